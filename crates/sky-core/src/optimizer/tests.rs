//! Optimizer rules on a small hand-built catalog: each test states the rule it pins down.

use super::*;
use crate::catalog::{
    AcceleratorInfo, AttachableAcceleratorOffer, CatalogSource, CloudCatalog, InstanceType, Offer,
    Zone,
};
use crate::resources::{AcceleratorRequest, Amount, MemoryRequest, Placement};

fn it(name: &str, vcpus: f64, mem: f64, acc: Option<(&str, f64)>) -> InstanceType {
    InstanceType {
        name: name.to_owned(),
        vcpus,
        memory_gib: mem,
        accelerator: acc.map(|(n, c)| AcceleratorInfo {
            name: n.to_owned(),
            count: c,
            memory_gib: None,
        }),
        arch: None,
        generation: None,
    }
}

struct Builder {
    cat: CloudCatalog,
}

impl Builder {
    fn new(cloud: CloudId) -> Self {
        Builder {
            cat: CloudCatalog {
                cloud,
                source: CatalogSource {
                    description: "test fixture".to_owned(),
                    data_date: "2026-05-20".to_owned(),
                    partial_coverage: None,
                },
                regions: Vec::new(),
                zones: Vec::new(),
                instance_types: Vec::new(),
                offers: Vec::new(),
                attachable_accelerators: Vec::new(),
                host_rules: Vec::new(),
                images: Vec::new(),
            },
        }
    }

    fn region(&mut self, name: &str) -> u32 {
        if let Some(i) = self.cat.regions.iter().position(|r| r == name) {
            return i as u32;
        }
        self.cat.regions.push(name.to_owned());
        (self.cat.regions.len() - 1) as u32
    }

    fn zone(&mut self, region: &str, zone: &str) -> u32 {
        let r = self.region(region);
        if let Some(i) = self.cat.zones.iter().position(|z| z.name == zone) {
            return i as u32;
        }
        self.cat.zones.push(Zone {
            name: zone.to_owned(),
            region: r,
        });
        (self.cat.zones.len() - 1) as u32
    }

    fn ty(&mut self, t: InstanceType) -> &mut Self {
        self.cat.instance_types.push(t);
        self
    }

    fn offer(
        &mut self,
        ty: &str,
        region: &str,
        zone: Option<&str>,
        price: Option<f64>,
        spot: Option<f64>,
    ) -> &mut Self {
        let t = self
            .cat
            .instance_types
            .iter()
            .position(|x| x.name == ty)
            .expect("type defined") as u32;
        let r = self.region(region);
        let z = zone.map(|z| self.zone(region, z));
        self.cat.offers.push(Offer {
            instance_type: t,
            region: r,
            zone: z,
            price,
            spot_price: spot,
        });
        self
    }

    fn gpu(
        &mut self,
        name: &str,
        count: f64,
        region: &str,
        zone: &str,
        price: f64,
        spot: f64,
    ) -> &mut Self {
        let r = self.region(region);
        let z = self.zone(region, zone);
        self.cat
            .attachable_accelerators
            .push(AttachableAcceleratorOffer {
                accelerator: AcceleratorInfo {
                    name: name.to_owned(),
                    count,
                    memory_gib: None,
                },
                region: r,
                zone: Some(z),
                price: Some(price),
                spot_price: Some(spot),
            });
        self
    }
}

fn fixture() -> Catalog {
    let mut aws = Builder::new(CloudId::Aws);
    aws.ty(it("m6i.2xlarge", 8.0, 32.0, None))
        .ty(it("c6i.2xlarge", 8.0, 16.0, None))
        .ty(it("r6i.4xlarge", 16.0, 128.0, None))
        .ty(it("p3.2xlarge", 8.0, 61.0, Some(("V100", 1.0))))
        .ty(it("p3.8xlarge", 32.0, 244.0, Some(("V100", 4.0))));
    aws.offer(
        "m6i.2xlarge",
        "eu-west-1",
        Some("euw1-az1"),
        Some(0.428),
        Some(0.20),
    )
    .offer(
        "m6i.2xlarge",
        "us-east-1",
        Some("use1-az1"),
        Some(0.384),
        Some(0.15),
    )
    .offer(
        "m6i.2xlarge",
        "us-east-1",
        Some("use1-az2"),
        Some(0.384),
        Some(0.14),
    )
    .offer(
        "c6i.2xlarge",
        "us-east-1",
        Some("use1-az1"),
        Some(0.34),
        Some(0.12),
    )
    .offer(
        "r6i.4xlarge",
        "us-east-1",
        Some("use1-az1"),
        Some(1.008),
        Some(0.40),
    )
    .offer(
        "p3.2xlarge",
        "ap-northeast-1",
        Some("apne1-az1"),
        Some(2.0),
        Some(1.0),
    )
    .offer(
        "p3.2xlarge",
        "us-west-2",
        Some("usw2-az1"),
        Some(3.06),
        Some(0.9),
    )
    .offer(
        "p3.8xlarge",
        "us-west-2",
        Some("usw2-az1"),
        Some(12.24),
        None,
    );

    let mut gcp = Builder::new(CloudId::Gcp);
    gcp.ty(it("n2-standard-8", 8.0, 32.0, None))
        .ty(it("n1-standard-8", 8.0, 30.0, None))
        .ty(it("n1-highmem-8", 8.0, 52.0, None))
        .ty(it("a2-highgpu-1g", 12.0, 85.0, None));
    gcp.offer(
        "n2-standard-8",
        "us-central1",
        Some("us-central1-b"),
        Some(0.3885),
        Some(0.09),
    )
    .offer(
        "n2-standard-8",
        "us-central1",
        Some("us-central1-a"),
        Some(0.3885),
        Some(0.09),
    )
    .offer(
        "n1-standard-8",
        "us-central1",
        Some("us-central1-a"),
        Some(0.38),
        Some(0.08),
    )
    .offer(
        "n1-highmem-8",
        "us-central1",
        Some("us-central1-a"),
        Some(0.47),
        Some(0.10),
    )
    .offer(
        "n1-highmem-8",
        "asia-east1",
        Some("asia-east1-c"),
        Some(0.55),
        Some(0.10),
    )
    .offer(
        "a2-highgpu-1g",
        "us-central1",
        Some("us-central1-a"),
        Some(0.95),
        Some(0.4),
    );
    gcp.gpu("V100", 1.0, "asia-east1", "asia-east1-c", 2.48, 0.5)
        .gpu("V100", 1.0, "us-central1", "us-central1-a", 2.48, 0.6)
        .gpu("A100", 1.0, "us-central1", "us-central1-a", 1.7, 1.3)
        .gpu(
            "tpu-v4-8",
            1.0,
            "us-central2",
            "us-central2-b",
            12.88,
            3.686,
        );

    let mut azure = Builder::new(CloudId::Azure);
    azure.ty(it("Standard_D8s_v5", 8.0, 32.0, None)).ty(it(
        "Standard_NC6s_v3",
        6.0,
        112.0,
        Some(("V100", 1.0)),
    ));
    azure
        .offer("Standard_D8s_v5", "eastus", None, Some(0.384), Some(0.05))
        .offer("Standard_NC6s_v3", "eastus", None, Some(3.06), Some(0.9));
    Catalog {
        clouds: vec![aws.cat, gcp.cat, azure.cat],
        accelerator_names: Vec::new(),
    }
}

const ORDER: [CloudId; 3] = [CloudId::Aws, CloudId::Gcp, CloudId::Azure];

fn run(resources: Vec<Resources>, kind: ChoiceKind) -> Result<Plan, OptimizeError> {
    let task = TaskRequest::new(ResourceChoice {
        kind,
        options: resources,
    });
    optimize(
        &fixture(),
        &[task],
        &ORDER,
        &Blocklist::default(),
        Target::Cost,
    )
}

fn chosen(r: Resources) -> Candidate {
    run(vec![r], ChoiceKind::AnyOf).expect("feasible").tasks[0]
        .chosen
        .clone()
}

fn summary(c: &Candidate) -> String {
    format!(
        "{} {} {} {} spot={} ${:.4}",
        c.cloud.as_str(),
        c.region,
        c.zone.as_deref().unwrap_or("-"),
        c.instance_type,
        c.use_spot,
        c.hourly_price
    )
}

#[test]
fn an_empty_request_gets_the_cheapest_default_family_vm_with_8_cpus_and_4gb_each() {
    // c6i.2xlarge is cheaper but has 2 GB per vCPU; the default asks for 4x memory.
    let c = chosen(Resources::default());
    assert_eq!(
        summary(&c),
        "aws us-east-1 - m6i.2xlarge spot=false $0.3840"
    );
}

#[test]
fn on_demand_candidates_are_per_region_on_aws_and_per_zone_on_gcp() {
    let plan = run(vec![Resources::default()], ChoiceKind::AnyOf).expect("feasible");
    let rows: Vec<String> = plan.tasks[0].candidates.iter().map(summary).collect();
    assert_eq!(
        rows,
        [
            "aws us-east-1 - m6i.2xlarge spot=false $0.3840",
            "azure eastus - Standard_D8s_v5 spot=false $0.3840",
            "gcp us-central1 us-central1-a n2-standard-8 spot=false $0.3885",
            "gcp us-central1 us-central1-b n2-standard-8 spot=false $0.3885",
            "aws eu-west-1 - m6i.2xlarge spot=false $0.4280",
        ]
    );
}

#[test]
fn memory_ratio_admits_compute_optimised_types() {
    let r = Resources {
        memory: Some(MemoryRequest::PerCpu(Amount {
            value: 2.0,
            at_least: true,
        })),
        ..Default::default()
    };
    assert_eq!(
        summary(&chosen(r)),
        "aws us-east-1 - c6i.2xlarge spot=false $0.3400"
    );
}

#[test]
fn spot_picks_the_type_by_on_demand_price_and_places_it_by_spot_price_per_zone() {
    let r = Resources {
        use_spot: true,
        ..Default::default()
    };
    // Azure's D8s_v5 spot ($0.05) beats AWS's m6i spot zones.
    assert_eq!(
        summary(&chosen(r.clone())),
        "azure eastus - Standard_D8s_v5 spot=true $0.0500"
    );
    let plan = run(
        vec![Resources {
            placement: Placement {
                cloud: Some(CloudId::Aws),
                ..Default::default()
            },
            ..r
        }],
        ChoiceKind::AnyOf,
    )
    .expect("feasible");
    let rows: Vec<String> = plan.tasks[0].candidates.iter().map(summary).collect();
    assert_eq!(
        rows[0],
        "aws us-east-1 use1-az2 m6i.2xlarge spot=true $0.1400"
    );
}

#[test]
fn attachable_gpus_ride_on_a_sized_n1_host_and_pay_for_both() {
    let r = Resources {
        accelerators: Some(AcceleratorRequest {
            name: "V100".to_owned(),
            count: 1.0,
        }),
        ..Default::default()
    };
    let plan = run(vec![r], ChoiceKind::AnyOf).expect("feasible");
    let first = &plan.tasks[0].chosen;
    // 8+ vCPUs and 32+ GB: n1-standard-8 (30 GB) is too small, n1-highmem-8 fits.
    assert_eq!(
        summary(first),
        "aws ap-northeast-1 - p3.2xlarge spot=false $2.0000"
    );
    let gcp: Vec<String> = plan.tasks[0]
        .candidates
        .iter()
        .filter(|c| c.cloud == CloudId::Gcp)
        .map(summary)
        .collect();
    assert_eq!(
        gcp,
        [
            "gcp us-central1 us-central1-a n1-highmem-8 spot=false $2.9500",
            "gcp asia-east1 asia-east1-c n1-highmem-8 spot=false $3.0300"
        ]
    );
}

#[test]
fn dedicated_gpu_hosts_and_tpu_vms() {
    let a100 = Resources {
        accelerators: Some(AcceleratorRequest {
            name: "A100".to_owned(),
            count: 1.0,
        }),
        ..Default::default()
    };
    assert_eq!(
        summary(&chosen(a100)),
        "gcp us-central1 us-central1-a a2-highgpu-1g spot=false $2.6500"
    );
    let tpu = Resources {
        accelerators: Some(AcceleratorRequest {
            name: "tpu-v4-8".to_owned(),
            count: 1.0,
        }),
        ..Default::default()
    };
    let c = chosen(tpu);
    assert_eq!(
        summary(&c),
        "gcp us-central2 us-central2-b TPU-VM spot=false $12.8800"
    );
    assert_eq!(c.vcpus, None);
}

#[test]
fn ordered_takes_the_first_feasible_alternative_even_if_dearer() {
    let v100x4 = Resources {
        accelerators: Some(AcceleratorRequest {
            name: "V100".to_owned(),
            count: 4.0,
        }),
        ..Default::default()
    };
    let cpu = Resources::default();
    let ordered = run(vec![v100x4.clone(), cpu.clone()], ChoiceKind::Ordered).expect("feasible");
    assert_eq!(ordered.tasks[0].chosen.instance_type, "p3.8xlarge");
    // The second choice stays in the plan, after every candidate of the first: failover reaches
    // it once the first is used up (out of capacity everywhere).
    let kinds: Vec<bool> = ordered.tasks[0]
        .candidates
        .iter()
        .map(|c| c.accelerators.is_some())
        .collect();
    let first_cpu = kinds
        .iter()
        .position(|gpu| !gpu)
        .expect("the CPU choice is kept");
    assert!(
        first_cpu > 0 && kinds[first_cpu..].iter().all(|gpu| !gpu),
        "{kinds:?}"
    );
    let any = run(vec![v100x4, cpu], ChoiceKind::AnyOf).expect("feasible");
    assert_eq!(any.tasks[0].chosen.instance_type, "m6i.2xlarge");
}

#[test]
fn nodes_multiply_the_total_and_the_blocklist_removes_places() {
    let mut task = TaskRequest::new(ResourceChoice::default());
    task.num_nodes = 3;
    let blocklist = Blocklist {
        blocks: vec![Block {
            cloud: Some(CloudId::Aws),
            region: Some("us-east-1".to_owned()),
            ..Default::default()
        }],
    };
    let plan = optimize(&fixture(), &[task], &ORDER, &blocklist, Target::Cost).expect("feasible");
    let c = &plan.tasks[0].chosen;
    assert_eq!(
        summary(c),
        "azure eastus - Standard_D8s_v5 spot=false $0.3840"
    );
    assert!((c.total_hourly_price - 3.0 * 0.384).abs() < 1e-12);
}

#[test]
fn a_chain_pays_egress_to_move_outputs_between_clouds() {
    let pin = |cloud| Resources {
        placement: Placement {
            cloud: Some(cloud),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut first = TaskRequest::new(ResourceChoice {
        kind: ChoiceKind::AnyOf,
        options: vec![pin(CloudId::Gcp)],
    });
    first.outputs_gigabytes = Some(100.0);
    let second = TaskRequest::new(ResourceChoice::default());
    let plan = optimize(
        &fixture(),
        &[first.clone(), second.clone()],
        &ORDER,
        &Blocklist::default(),
        Target::Cost,
    )
    .expect("feasible");
    // Moving 100 GB out of GCP costs $12, far more than AWS's $0.0045/h edge: stay on GCP.
    assert_eq!(plan.tasks[1].chosen.cloud, CloudId::Gcp);
    first.outputs_gigabytes = None;
    let plan = optimize(
        &fixture(),
        &[first, second],
        &ORDER,
        &Blocklist::default(),
        Target::Cost,
    )
    .expect("feasible");
    assert_eq!(plan.tasks[1].chosen.cloud, CloudId::Aws);
}

#[test]
fn unknown_names_are_invalid_with_suggestions() {
    let r = Resources {
        instance_type: Some("m6i.2xlarg".to_owned()),
        ..Default::default()
    };
    let err = run(vec![r], ChoiceKind::AnyOf).expect_err("unknown type");
    assert_eq!(err.code(), ErrorCode::InvalidTask);
    assert_eq!(
        err.to_string(),
        "invalid instance type 'm6i.2xlarg' for any cloud among AWS, GCP, Azure (did you mean 'm6i.2xlarge'?)"
    );
    let r = Resources {
        placement: Placement {
            cloud: Some(CloudId::Aws),
            region: Some("us-east-9".to_owned()),
            zone: None,
        },
        ..Default::default()
    };
    let err = run(vec![r], ChoiceKind::AnyOf).expect_err("unknown region");
    assert!(
        err.to_string()
            .starts_with("invalid region 'us-east-9' (did you mean 'us-east-1'"),
        "{err}"
    );
}

#[test]
fn infeasible_requests_name_the_constraint_and_the_nearest_offers() {
    let r = Resources {
        cpus: Some(Amount {
            value: 7.0,
            at_least: false,
        }),
        ..Default::default()
    };
    let err = run(vec![r], ChoiceKind::AnyOf).expect_err("no 7-cpu vm");
    assert_eq!(err.code(), ErrorCode::NoFeasibleResources);
    let text = err.to_string();
    assert!(
        text.contains("nothing satisfies cpus 7; nearest offers without it:"),
        "{text}"
    );
    assert!(
        text.contains("AWS m6i.2xlarge in us-east-1 at $0.3840/h"),
        "{text}"
    );

    let r = Resources {
        accelerators: Some(AcceleratorRequest {
            name: "V100".to_owned(),
            count: 3.0,
        }),
        ..Default::default()
    };
    let text = run(vec![r], ChoiceKind::AnyOf)
        .expect_err("no 3 x V100")
        .to_string();
    assert!(
        text.contains(
            "no enabled cloud offers V100:3; offered accelerators that come close: V100:1, V100:4"
        ),
        "{text}"
    );
}

#[test]
fn max_hourly_cost_filters_instance_types() {
    let r = Resources {
        max_hourly_cost: Some(0.1),
        ..Default::default()
    };
    let err = run(vec![r], ChoiceKind::AnyOf).expect_err("too cheap");
    assert!(
        err.to_string()
            .contains("nothing satisfies max_hourly_cost $0.1/h"),
        "{err}"
    );
}

#[test]
fn the_json_shape_matches_the_cli_contract() {
    let plan = run(
        vec![Resources {
            accelerators: Some(AcceleratorRequest {
                name: "V100".to_owned(),
                count: 1.0,
            }),
            ..Default::default()
        }],
        ChoiceKind::AnyOf,
    )
    .expect("feasible");
    let v = serde_json::to_string(&plan.tasks[0].chosen).expect("serializable");
    assert_eq!(
        v,
        r#"{"cloud":"aws","region":"ap-northeast-1","zone":null,"instance_type":"p3.2xlarge","accelerators":{"V100":1},"vcpus":8.0,"memory_gib":61.0,"use_spot":false,"hourly_price":2.0,"total_hourly_price":2.0}"#
    );
}
