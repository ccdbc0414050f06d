//! The task's machine settings reach Azure (against the local ARM fake, read back from the PUT
//! bodies it stored): OS disk size and storage type per tier, the image (the task's URN, or the
//! Gen1 / Gen2 default the catalog's generation of the size calls for), and NSG rules for the
//! task's ports.

mod common;

use sky_core::provision::{NodeSettings, Provider, ProvisionErrorKind};
use sky_core::resources::{DiskTier, PortRange};

use common::{env, launchable, request};

#[tokio::test]
async fn disk_image_and_ports_are_what_the_task_asked() {
    let e = env().await;
    let p = &e.provider;
    let mut req = request("tuned", 1, launchable("eastus", None, false));
    req.settings = NodeSettings {
        disk_size_gb: 500,
        disk_tier: Some(DiskTier::High),
        ports: vec![
            PortRange {
                start: 8080,
                end: 8080,
            },
            PortRange {
                start: 9000,
                end: 9010,
            },
        ],
        image_id: Some("Canonical:ubuntu-24_04-lts:server:latest".into()),
        ..NodeSettings::default()
    };
    p.run_instances(&req).await.expect("launch");
    p.wait_instances("tuned").await.expect("wait");
    let vms = e.fake.vms();
    let storage = &vms[0]["properties"]["storageProfile"];
    assert_eq!(storage["osDisk"]["diskSizeGB"], 500);
    assert_eq!(
        storage["osDisk"]["managedDisk"]["storageAccountType"],
        "Premium_LRS"
    );
    assert_eq!(storage["imageReference"]["offer"], "ubuntu-24_04-lts");
    assert_eq!(storage["imageReference"]["sku"], "server");
    let nsgs = e
        .fake
        .resources_of_type("Microsoft.Network/networkSecurityGroups");
    let mut ranges: Vec<&str> = nsgs[0]["properties"]["securityRules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["properties"]["destinationPortRange"].as_str())
        .collect();
    ranges.sort_unstable();
    assert_eq!(ranges, ["22", "8080", "9000-9010"]);
    p.terminate("tuned").await.expect("down");
    assert_eq!(e.fake.resource_count(), 0);
}

#[tokio::test]
async fn a_gen1_only_size_gets_a_gen1_image_and_a_standard_disk() {
    let e = env().await;
    let p = &e.provider;
    let mut l = launchable("eastus", None, false);
    // `Generation` V1 in the catalog: it cannot boot the Gen2 Ubuntu image.
    l.instance_type = "Standard_D2_v2".into();
    p.run_instances(&request("old", 1, l))
        .await
        .expect("launch");
    p.wait_instances("old").await.expect("wait");
    let vms = e.fake.vms();
    let storage = &vms[0]["properties"]["storageProfile"];
    assert_eq!(storage["imageReference"]["sku"], "22_04-lts");
    // Not an S size: the default tier falls back from premium as SkyPilot does.
    assert_eq!(
        storage["osDisk"]["managedDisk"]["storageAccountType"],
        "Standard_LRS"
    );
    assert_eq!(storage["osDisk"]["diskSizeGB"], 256);
    p.terminate("old").await.expect("down");
}

#[tokio::test]
async fn a_tier_the_size_cannot_take_is_an_invalid_request_naming_it() {
    let e = env().await;
    let mut l = launchable("eastus", None, false);
    l.instance_type = "Standard_D2_v2".into();
    let mut req = request("nope", 1, l);
    req.settings.disk_tier = Some(DiskTier::High);
    let err = e
        .provider
        .run_instances(&req)
        .await
        .expect_err("high on D2_v2");
    assert_eq!(err.kind, ProvisionErrorKind::InvalidRequest);
    assert!(err.message.contains("disk_tier high"), "{}", err.message);
    assert_eq!(
        e.fake.resource_count(),
        0,
        "nothing is created for a refused tier"
    );
}
