//! Cost of clusters from their recorded running intervals: hourly price x nodes x hours, per launch
//! and in total, including clusters that are gone.
//!
//! Pure arithmetic over [`CostRecord`]s; what this module does not do: read the database or know
//! prices beyond what was recorded at launch (a later price change does not rewrite history).

use crate::clock::UnixSeconds;
use crate::state::CostRecord;

/// One launch's cost so far.
#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    pub record: CostRecord,
    /// Seconds the nodes ran, over every interval (an open interval counts up to `now`).
    pub running_seconds: i64,
    /// USD: `hourly_price * num_nodes * hours`.
    pub cost: f64,
}

pub fn cost_lines(records: Vec<CostRecord>, now: UnixSeconds) -> Vec<CostLine> {
    records
        .into_iter()
        .map(|record| {
            let running_seconds: i64 = record
                .intervals
                .iter()
                .map(|(start, end)| (end.unwrap_or(now) - start).max(0))
                .sum();
            let cost =
                record.hourly_price * f64::from(record.num_nodes) * running_seconds as f64 / 3600.0;
            CostLine {
                record,
                running_seconds,
                cost,
            }
        })
        .collect()
}

pub fn total(lines: &[CostLine]) -> f64 {
    lines.iter().map(|l| l.cost).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudId;

    fn record(price: f64, nodes: u32, intervals: Vec<(i64, Option<i64>)>) -> CostRecord {
        CostRecord {
            cluster_id: "c-1".into(),
            name: "c".into(),
            num_nodes: nodes,
            cloud: CloudId::Aws,
            region: "us-east-1".into(),
            instance_type: "m6i.large".into(),
            use_spot: false,
            hourly_price: price,
            launched_at: 0,
            terminated_at: None,
            intervals,
        }
    }

    #[test]
    fn price_times_nodes_times_hours_with_open_intervals_up_to_now() {
        let lines = cost_lines(
            vec![
                record(0.5, 2, vec![(0, Some(3600)), (7200, None)]),
                record(0.0, 4, vec![(0, Some(36_000))]),
            ],
            9000,
        );
        assert_eq!(lines[0].running_seconds, 3600 + 1800);
        assert!((lines[0].cost - 0.5 * 2.0 * 1.5).abs() < 1e-9);
        assert_eq!(lines[1].cost, 0.0);
        assert!((total(&lines) - 1.5).abs() < 1e-9);
    }

    #[test]
    fn a_clock_that_went_backwards_never_gives_negative_time() {
        let lines = cost_lines(vec![record(1.0, 1, vec![(100, None)])], 50);
        assert_eq!((lines[0].running_seconds, lines[0].cost), (0, 0.0));
    }
}
