//! The job scheduling policy, as a pure function: given what each node offers, what running jobs
//! hold and the pending jobs in submission order, which jobs start now and on which nodes.
//!
//! Policy: strict FIFO. Pending jobs are taken in order and started while they fit; the first one
//! that does not fit stops the pass, so a big job is never starved by a stream of small ones.
//! Jobs that could not fit even on an idle cluster are refused at submission ([`fits_idle`]), so
//! they never block the queue. Nodes are chosen lowest rank first (the head first).
//!
//! This module does no I/O and keeps no state; the agent calls it after every change.

use super::{JobDemand, JobId, NodeCapacity};

/// Fractions such as 0.1 + 0.2 must still fit in 0.3.
const EPSILON: f64 = 1e-9;

/// A job waiting to start.
#[derive(Debug, Clone, Copy)]
pub struct Pending<'a> {
    pub id: JobId,
    pub num_nodes: u32,
    pub demand: &'a JobDemand,
}

/// A job holding resources on some nodes.
#[derive(Debug, Clone, Copy)]
pub struct Holding<'a> {
    pub nodes: &'a [u32],
    pub demand: &'a JobDemand,
}

/// "Start `job` on these cluster nodes; job rank i runs on `nodes[i]`."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub job: JobId,
    pub nodes: Vec<u32>,
}

/// Why a job can never run on a cluster.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DoesNotFit {
    #[error("the job asks for {wanted} nodes but the cluster has {have}")]
    Nodes { wanted: u32, have: usize },
    #[error("the job asks for {wanted} CPUs per node but a node has {have}")]
    Cpus { wanted: f64, have: f64 },
    #[error("the job asks for {wanted} {name} per node but a node has {have}")]
    Accelerator {
        name: String,
        wanted: f64,
        have: f64,
    },
    #[error("num_nodes must be at least 1, got 0")]
    ZeroNodes,
    #[error("demand for {what} must be a finite number ≥ 0, got {value}")]
    BadDemand { what: String, value: f64 },
}

/// Whether a job could run on the cluster when nothing else is running.
pub fn fits_idle(
    capacity: &[NodeCapacity],
    num_nodes: u32,
    demand: &JobDemand,
) -> Result<(), DoesNotFit> {
    if num_nodes == 0 {
        return Err(DoesNotFit::ZeroNodes);
    }
    if !(demand.cpus.is_finite() && demand.cpus >= 0.0) {
        return Err(DoesNotFit::BadDemand {
            what: "cpus".into(),
            value: demand.cpus,
        });
    }
    for (name, count) in &demand.accelerators {
        if !(count.is_finite() && *count >= 0.0) {
            return Err(DoesNotFit::BadDemand {
                what: name.clone(),
                value: *count,
            });
        }
    }
    if num_nodes as usize > capacity.len() {
        return Err(DoesNotFit::Nodes {
            wanted: num_nodes,
            have: capacity.len(),
        });
    }
    // Nodes are alike; checking the first that is too small names the problem.
    for node in capacity {
        if demand.cpus > node.cpus + EPSILON {
            return Err(DoesNotFit::Cpus {
                wanted: demand.cpus,
                have: node.cpus,
            });
        }
        for (name, count) in &demand.accelerators {
            let have = node.accelerators.get(name).copied().unwrap_or(0.0);
            if *count > have + EPSILON {
                return Err(DoesNotFit::Accelerator {
                    name: name.clone(),
                    wanted: *count,
                    have,
                });
            }
        }
    }
    Ok(())
}

/// The placements to make now, in FIFO order. `pending` must be in submission order.
pub fn schedule(
    capacity: &[NodeCapacity],
    holding: &[Holding<'_>],
    pending: &[Pending<'_>],
) -> Vec<Placement> {
    let mut free: Vec<NodeCapacity> = capacity.to_vec();
    for hold in holding {
        for &rank in hold.nodes {
            if let Some(node) = free.get_mut(rank as usize) {
                take(node, hold.demand);
            }
        }
    }
    let mut placements = Vec::new();
    for job in pending {
        let chosen: Vec<u32> = free
            .iter()
            .enumerate()
            .filter(|(_, node)| fits(node, job.demand))
            .map(|(rank, _)| rank as u32)
            .take(job.num_nodes as usize)
            .collect();
        if job.num_nodes == 0 || chosen.len() < job.num_nodes as usize {
            break;
        }
        for &rank in &chosen {
            take(&mut free[rank as usize], job.demand);
        }
        placements.push(Placement {
            job: job.id,
            nodes: chosen,
        });
    }
    placements
}

fn fits(node: &NodeCapacity, demand: &JobDemand) -> bool {
    demand.cpus <= node.cpus + EPSILON
        && demand.accelerators.iter().all(|(name, count)| {
            *count <= node.accelerators.get(name).copied().unwrap_or(0.0) + EPSILON
        })
}

fn take(node: &mut NodeCapacity, demand: &JobDemand) {
    node.cpus -= demand.cpus;
    for (name, count) in &demand.accelerators {
        *node.accelerators.entry(name.clone()).or_insert(0.0) -= count;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn node(cpus: f64, gpus: f64) -> NodeCapacity {
        let mut accelerators = BTreeMap::new();
        if gpus > 0.0 {
            accelerators.insert("A100".to_string(), gpus);
        }
        NodeCapacity { cpus, accelerators }
    }

    fn demand(cpus: f64, gpus: f64) -> JobDemand {
        let mut accelerators = BTreeMap::new();
        if gpus > 0.0 {
            accelerators.insert("A100".to_string(), gpus);
        }
        JobDemand { cpus, accelerators }
    }

    fn ids(placements: &[Placement]) -> Vec<u64> {
        placements.iter().map(|p| p.job.0).collect()
    }

    #[test]
    fn default_demand_packs_two_jobs_per_cpu() {
        let cap = [node(2.0, 0.0)];
        let d = JobDemand::default();
        let pending: Vec<Pending> = (1..=5)
            .map(|i| Pending {
                id: JobId(i),
                num_nodes: 1,
                demand: &d,
            })
            .collect();
        assert_eq!(ids(&schedule(&cap, &[], &pending)), vec![1, 2, 3, 4]);
    }

    #[test]
    fn running_jobs_hold_their_share() {
        let cap = [node(4.0, 2.0)];
        let big = demand(1.0, 2.0);
        let small = demand(1.0, 0.0);
        let held = [0u32];
        let holding = [Holding {
            nodes: &held,
            demand: &big,
        }];
        let pending = [
            Pending {
                id: JobId(2),
                num_nodes: 1,
                demand: &big,
            },
            Pending {
                id: JobId(3),
                num_nodes: 1,
                demand: &small,
            },
        ];
        // Job 2 needs the GPUs job 1 holds, and FIFO keeps job 3 behind it.
        assert!(schedule(&cap, &holding, &pending).is_empty());
        assert_eq!(ids(&schedule(&cap, &[], &pending)), vec![2, 3]);
    }

    #[test]
    fn fifo_does_not_let_small_jobs_overtake() {
        let cap = [node(2.0, 0.0)];
        let whole = demand(2.0, 0.0);
        let half = demand(1.0, 0.0);
        let held = [0u32];
        let holding = [Holding {
            nodes: &held,
            demand: &half,
        }];
        let pending = [
            Pending {
                id: JobId(5),
                num_nodes: 1,
                demand: &whole,
            },
            Pending {
                id: JobId(6),
                num_nodes: 1,
                demand: &half,
            },
        ];
        assert!(schedule(&cap, &holding, &pending).is_empty());
    }

    #[test]
    fn multi_node_jobs_take_lowest_ranks_with_room() {
        let cap = [node(1.0, 0.0), node(1.0, 0.0), node(1.0, 0.0)];
        let one = demand(1.0, 0.0);
        let held = [0u32];
        let holding = [Holding {
            nodes: &held,
            demand: &one,
        }];
        let pending = [
            Pending {
                id: JobId(2),
                num_nodes: 2,
                demand: &one,
            },
            Pending {
                id: JobId(3),
                num_nodes: 1,
                demand: &one,
            },
        ];
        let placed = schedule(&cap, &holding, &pending);
        assert_eq!(
            placed,
            vec![Placement {
                job: JobId(2),
                nodes: vec![1, 2]
            }]
        );
    }

    #[test]
    fn fractional_demands_fit_exactly() {
        let cap = [node(0.3, 0.0)];
        let a = demand(0.1, 0.0);
        let b = demand(0.2, 0.0);
        let pending = [
            Pending {
                id: JobId(1),
                num_nodes: 1,
                demand: &a,
            },
            Pending {
                id: JobId(2),
                num_nodes: 1,
                demand: &b,
            },
        ];
        assert_eq!(ids(&schedule(&cap, &[], &pending)), vec![1, 2]);
    }

    #[test]
    fn fits_idle_names_what_is_missing() {
        let cap = [node(4.0, 1.0), node(4.0, 1.0)];
        assert_eq!(
            fits_idle(&cap, 3, &JobDemand::default()),
            Err(DoesNotFit::Nodes { wanted: 3, have: 2 })
        );
        assert_eq!(
            fits_idle(&cap, 1, &demand(8.0, 0.0)),
            Err(DoesNotFit::Cpus {
                wanted: 8.0,
                have: 4.0
            })
        );
        let err = fits_idle(&cap, 1, &demand(1.0, 2.0)).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("the job asks for 2 A100 per node but a node has 1".to_string())
        );
        assert_eq!(
            fits_idle(&cap, 0, &demand(1.0, 0.0)),
            Err(DoesNotFit::ZeroNodes)
        );
        assert!(matches!(
            fits_idle(&cap, 1, &demand(f64::NAN, 0.0)),
            Err(DoesNotFit::BadDemand { .. })
        ));
        assert_eq!(fits_idle(&cap, 2, &demand(4.0, 1.0)), Ok(()));
    }
}
