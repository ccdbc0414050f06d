//! Spend over time for the Cost report page: cumulative USD across every cluster (gone ones
//! included) from their recorded running intervals, drawn with plotters as SVG like the price chart.
//!
//! Pure arithmetic over `CostLineView`s plus drawing; what this module does not do: read the
//! database (the facade's cost report does) or price anything (prices are the ones recorded at
//! launch).

use plotters::prelude::*;
use sky_core::api::views::CostLineView;

use crate::chart::{ChartError, ensure_font};

/// Points on the curve; enough for a smooth line, few enough for a small SVG.
const STEPS: usize = 120;

/// Cumulative spend at `steps + 1` evenly spaced instants from the first launch to `now`:
/// `(seconds before now, USD so far)`. Empty when nothing was ever launched.
pub fn cumulative(lines: &[CostLineView], now: i64, steps: usize) -> Vec<(f64, f64)> {
    let Some(first) = lines
        .iter()
        .flat_map(|l| l.intervals.iter().map(|(start, _)| *start))
        .min()
    else {
        return Vec::new();
    };
    let span = (now - first).max(1);
    (0..=steps)
        .map(|i| {
            let t = first + span * i as i64 / steps.max(1) as i64;
            let spent: f64 = lines
                .iter()
                .map(|l| {
                    let seconds: i64 = l
                        .intervals
                        .iter()
                        .map(|(start, end)| (end.unwrap_or(now).min(t) - start).max(0))
                        .sum();
                    l.hourly_price * seconds as f64 / 3600.0
                })
                .sum();
            ((now - t) as f64, spent)
        })
        .collect()
}

/// The cumulative-spend chart as SVG text; `None` when there is no spend history yet.
pub fn spend_chart(lines: &[CostLineView], now: i64) -> Result<Option<String>, ChartError> {
    let points = cumulative(lines, now, STEPS);
    let Some(&(span, _)) = points.first() else {
        return Ok(None);
    };
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    ensure_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        draw(&root, &points, span.max(1.0), max).map_err(|e| ChartError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    Ok(Some(svg))
}

type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    points: &[(f64, f64)],
    span: f64,
    max: f64,
) -> DrawResult {
    root.fill(&WHITE)?;
    // Hours read better than seconds once a cluster has run a while.
    let (unit, per) = if span >= 2.0 * 3600.0 {
        ("h", 3600.0)
    } else {
        ("min", 60.0)
    };
    let top = if max > 0.0 { max * 1.15 } else { 0.01 };
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .caption("Spend over time, all clusters (USD)", ("sans-serif", 16))
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(-span / per..0.0, 0.0..top)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| {
            if x.abs() < 1e-9 {
                "now".to_owned()
            } else {
                format!("{:.0}{unit} ago", -x)
            }
        })
        .y_label_formatter(&|y| format!("${y:.4}"))
        .label_style(("sans-serif", 12))
        .draw()?;
    let accent = RGBColor(0x25, 0x63, 0xeb);
    let line: Vec<(f64, f64)> = points.iter().map(|(ago, usd)| (-ago / per, *usd)).collect();
    // The area under the curve, closed along the x axis.
    let mut area = line.clone();
    if let (Some(first), Some(last)) = (line.first(), line.last()) {
        area.push((last.0, 0.0));
        area.push((first.0, 0.0));
    }
    chart.draw_series(std::iter::once(Polygon::new(
        area,
        accent.mix(0.15).filled(),
    )))?;
    chart.draw_series(std::iter::once(PathElement::new(
        line,
        accent.stroke_width(2),
    )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sky_core::CloudId;

    fn line(price: f64, intervals: Vec<(i64, Option<i64>)>) -> CostLineView {
        CostLineView {
            name: "c".into(),
            alive: true,
            cloud: CloudId::Aws,
            region: "us-east-1".into(),
            instance_type: "m6i.large".into(),
            num_nodes: 1,
            use_spot: false,
            hourly_price: price,
            launched_at: intervals.first().map_or(0, |i| i.0),
            terminated_at: None,
            running_seconds: 0,
            cost: 0.0,
            intervals,
        }
    }

    #[test]
    fn spend_grows_only_while_nodes_run() {
        // $3.6/h = $0.001/s; ran 0..1000, stopped, ran again 2000..now (3000).
        let lines = [line(3.6, vec![(0, Some(1000)), (2000, None)])];
        let points = cumulative(&lines, 3000, 3);
        let usd: Vec<f64> = points
            .iter()
            .map(|p| (p.1 * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(usd, [0.0, 1.0, 1.0, 2.0]);
        assert_eq!(points.first().map(|p| p.0), Some(3000.0));
        assert_eq!(points.last().map(|p| p.0), Some(0.0));
    }

    #[test]
    fn no_history_draws_nothing_and_history_draws_a_line() {
        assert_eq!(spend_chart(&[], 10).expect("empty"), None);
        let svg = spend_chart(&[line(1.0, vec![(0, None)])], 7200)
            .expect("chart")
            .expect("some");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("Spend over time"));
        assert!(svg.contains("now"));
    }
}
