//! The network keys of a cloud's `config.yaml` section, as SkyPilot spells them: `vpc_name`,
//! `security_group_name`, `use_internal_ips` and `ssh_proxy_command` (one command, or one per
//! region with `null` for "direct"). Read here, with positions for bad values, so a provider gets
//! them typed; which clouds act on which keys is [`NETWORK_KEYS`].

use std::collections::BTreeMap;

use crate::cloud::CloudId;
use crate::task::yaml::Node;

/// The network keys each cloud's provider acts on. Others of SkyPilot's stay "not used" (the
/// warning names them) until that provider does.
pub const NETWORK_KEYS: &[(CloudId, &[&str])] = &[
    (
        CloudId::Aws,
        &[
            "vpc_name",
            "security_group_name",
            "use_internal_ips",
            "ssh_proxy_command",
        ],
    ),
    (
        CloudId::Gcp,
        &["vpc_name", "use_internal_ips", "ssh_proxy_command"],
    ),
];

/// GCP's `vpc_name`: `NAME` or `PROJECT/NAME` (a shared VPC of a host project), of lowercase
/// letters, digits and `-` as GCP names them.
fn gcp_vpc_ok(text: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    match text.split_once('/') {
        Some((project, name)) => part(project) && part(name),
        None => part(text),
    }
}

/// `ssh_proxy_command`: how to reach the nodes' SSH port, OpenSSH's `ProxyCommand` with `%h`,
/// `%p` and `%r` for the node's address, port and login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyCommand {
    All(String),
    /// Per region; a region missing or `null` is reached directly.
    PerRegion(BTreeMap<String, Option<String>>),
}

impl ProxyCommand {
    pub fn for_region(&self, region: &str) -> Option<&str> {
        match self {
            ProxyCommand::All(cmd) => Some(cmd),
            ProxyCommand::PerRegion(map) => map.get(region).and_then(|c| c.as_deref()),
        }
    }
}

/// A cloud's network settings; the defaults are the cloud's default network, public addresses
/// and direct SSH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudNetwork {
    /// Launch into the network of this name (an AWS VPC's `Name` tag) instead of the default
    /// one; a region without it cannot take the cluster.
    pub vpc_name: Option<String>,
    /// Use this security group (created if missing) instead of one per cluster.
    pub security_group_name: Option<String>,
    /// Nodes get no public address; Sky reaches them by their private one (from inside the
    /// network, or through `ssh_proxy_command`).
    pub use_internal_ips: bool,
    pub ssh_proxy_command: Option<ProxyCommand>,
}

/// What went wrong, at which node, for the config's positioned error.
pub(super) type Bad<'n> = (String, &'n Node, String);

/// Reads the network keys of `cloud`'s section `value` (named `section` in messages).
pub(super) fn read<'n>(
    cloud: CloudId,
    section: &str,
    value: &'n Node,
) -> Result<CloudNetwork, Bad<'n>> {
    let mut network = CloudNetwork::default();
    let Some(keys) = NETWORK_KEYS
        .iter()
        .find(|(c, _)| *c == cloud)
        .map(|(_, k)| *k)
    else {
        return Ok(network);
    };
    for (k, v) in value.as_map().unwrap_or_default() {
        let key = k.key_text();
        if !keys.contains(&key.as_str()) || v.is_null() {
            continue;
        }
        let path = format!("{section}.{key}");
        let expected = |what: &str| {
            (
                path.clone(),
                v,
                format!("expected {what}, got {}: {}", v.kind_name(), v.show()),
            )
        };
        match key.as_str() {
            "vpc_name" | "security_group_name" => {
                let text = v
                    .as_str()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| expected("a name"))?
                    .to_owned();
                if key == "vpc_name" && cloud == CloudId::Gcp && !gcp_vpc_ok(&text) {
                    return Err((
                        path,
                        v,
                        format!(
                            "'{text}' is not a GCP network name (allowed: NAME or PROJECT/NAME, \
                             of lowercase letters, digits and '-')"
                        ),
                    ));
                }
                if key == "vpc_name" {
                    network.vpc_name = Some(text);
                } else {
                    network.security_group_name = Some(text);
                }
            }
            "use_internal_ips" => {
                network.use_internal_ips = v.as_bool().ok_or_else(|| expected("true or false"))?;
            }
            "ssh_proxy_command" => {
                network.ssh_proxy_command = Some(proxy_command(&path, v)?);
            }
            _ => {}
        }
    }
    Ok(network)
}

fn proxy_command<'n>(path: &str, v: &'n Node) -> Result<ProxyCommand, Bad<'n>> {
    let what = "a command (e.g. `ssh -W %h:%p bastion`), or a mapping of regions to commands";
    if let Some(cmd) = v.as_str() {
        return non_empty(path, v, cmd).map(ProxyCommand::All);
    }
    let Some(entries) = v.as_map() else {
        return Err((
            path.to_owned(),
            v,
            format!("expected {what}, got {}: {}", v.kind_name(), v.show()),
        ));
    };
    let mut map = BTreeMap::new();
    for (region, cmd) in entries {
        let region = region.key_text();
        let at = format!("{path}.{region}");
        let cmd = if cmd.is_null() {
            None
        } else {
            let text = cmd.as_str().ok_or_else(|| {
                (
                    at.clone(),
                    cmd,
                    format!(
                        "expected a command or null, got {}: {}",
                        cmd.kind_name(),
                        cmd.show()
                    ),
                )
            })?;
            Some(non_empty(&at, cmd, text)?)
        };
        map.insert(region, cmd);
    }
    Ok(ProxyCommand::PerRegion(map))
}

fn non_empty<'n>(path: &str, node: &'n Node, cmd: &str) -> Result<String, Bad<'n>> {
    if cmd.trim().is_empty() {
        return Err((
            path.to_owned(),
            node,
            "an empty command (leave the key out to connect directly)".to_owned(),
        ));
    }
    Ok(cmd.trim().to_owned())
}
