//! The fake ARM's VMs on real SSH hosts: power on places a VM on a host and writes that host's
//! address into the VM's public IP resource and NIC; power off and deletion take it off.

use serde_json::{Value, json};

use super::State;

/// The VM's public IP and NIC resource keys (lower-cased ids), through its network profile.
fn network_of(s: &State, vm: &Value) -> Option<(String, String)> {
    let nic_id = vm
        .pointer("/properties/networkProfile/networkInterfaces/0/id")?
        .as_str()?
        .to_lowercase();
    let ip_id = s
        .resources
        .get(&nic_id)?
        .pointer("/properties/ipConfigurations/0/properties/publicIPAddress/id")?
        .as_str()?
        .to_lowercase();
    Some((nic_id, ip_id))
}

pub(super) fn power_on(s: &mut State, id: &str) {
    let Some(hosts) = s.hosts.clone() else {
        return;
    };
    let Some(vm) = s.resources.get(id).cloned() else {
        return;
    };
    let user = hosts.user();
    let ssh = vm.pointer("/properties/osProfile/linuxConfiguration/ssh/publicKeys");
    if vm.pointer("/properties/osProfile/adminUsername") == Some(&json!(user)) {
        for k in ssh.and_then(Value::as_array).into_iter().flatten() {
            if let Some(line) = k["keyData"].as_str() {
                hosts.authorize(id, line);
            }
        }
    }
    let addr = match hosts.attach(id) {
        Ok(addr) => addr,
        Err(e) => {
            // The VM keeps its made-up addresses, so the launch fails on SSH and says where.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("fake ARM: no host for {id}: {e}");
            }
            return;
        }
    };
    let Some((nic, ip)) = network_of(s, &vm) else {
        return;
    };
    if let Some(r) = s.resources.get_mut(&ip) {
        r["properties"]["ipAddress"] = json!(addr);
    }
    if let Some(r) = s.resources.get_mut(&nic) {
        r["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"] = json!(addr);
    }
}

pub(super) fn power_off(s: &mut State, id: &str) {
    if let Some(hosts) = &s.hosts {
        hosts.detach(id);
    }
}

pub(super) fn delete(s: &mut State, id: &str) {
    if let Some(hosts) = &s.hosts {
        hosts.delete(id);
    }
}
