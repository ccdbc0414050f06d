//! `$SKY_HOME/ssh_node_pools.yaml`: the machines a user already has, as named pools, in SkyPilot's
//! format (pool name -> `hosts` (an IP or `{ip, user, identity_file, port}`), `user`,
//! `identity_file`), plus two keys of Sky's at either level: `port` (default 22) and
//! `proxy_jump: [user@]host[:port]`, a bastion to reach the hosts through, like OpenSSH's
//! `ProxyJump` (SkyPilot leaves that to `~/.ssh/config` aliases, which Sky does not read); the
//! bastion takes the host's user and key unless it names its own user.
//!
//! What this module does not do: SSH config host aliases or passwords (SkyPilot supports both;
//! Sky refuses them with a clear error), or touch the machines.

use std::path::{Path, PathBuf};

use super::SshTarget;
use crate::task::yaml::{Node, Scalar, parse_documents};

pub const POOLS_FILE: &str = "ssh_node_pools.yaml";

/// One pool: its hosts in file order (the first is the head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePool {
    pub name: String,
    pub hosts: Vec<SshTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct PoolError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// Reads the pools of `sky_home`; a missing file is no pools.
pub fn load(sky_home: &Path) -> Result<Vec<NodePool>, PoolError> {
    let path = sky_home.join(POOLS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(PoolError {
            file: path.display().to_string(),
            line: 0,
            field: "(file)".into(),
            message: e.to_string(),
        }),
    }
}

/// Expands a leading `~/` with the user's home, as SkyPilot does for `identity_file`.
fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

pub fn parse(text: &str, file: &Path) -> Result<Vec<NodePool>, PoolError> {
    let err = |node: Option<&Node>, field: &str, message: String| PoolError {
        file: file.display().to_string(),
        line: node.map_or(0, |n| n.pos.line),
        field: field.to_owned(),
        message,
    };
    let docs = parse_documents(text).map_err(|e| PoolError {
        file: file.display().to_string(),
        line: e.pos.line,
        field: "(syntax)".into(),
        message: e.to_string(),
    })?;
    let Some(Some(root)) = docs.into_iter().next() else {
        return Ok(Vec::new());
    };
    let Some(entries) = root.as_map() else {
        return Err(err(
            Some(&root),
            "(top level)",
            "expected a mapping of pool name to pool".into(),
        ));
    };
    let mut pools = Vec::new();
    for (key, value) in entries {
        let name = key.key_text();
        let Some(fields) = value.as_map() else {
            return Err(err(
                Some(value),
                &name,
                "expected a mapping with `hosts`".into(),
            ));
        };
        let mut user = None;
        let mut identity = None;
        let mut port = 22u16;
        let mut jump: Option<(String, &Node)> = None;
        let mut hosts_node = None;
        for (k, v) in fields {
            let field = format!("{name}.{}", k.key_text());
            match k.key_text().as_str() {
                "user" => {
                    user = Some(
                        text_of(v)
                            .ok_or_else(|| err(Some(v), &field, "expected a string".into()))?,
                    )
                }
                "identity_file" => {
                    identity =
                        Some(expand(&text_of(v).ok_or_else(|| {
                            err(Some(v), &field, "expected a path".into())
                        })?))
                }
                "port" => {
                    port = port_of(v).ok_or_else(|| {
                        err(
                            Some(v),
                            &field,
                            format!("'{}' is not a port (1-65535)", v.key_text()),
                        )
                    })?
                }
                "hosts" => hosts_node = Some(v),
                "proxy_jump" => {
                    jump = Some((
                        text_of(v).ok_or_else(|| {
                            err(Some(v), &field, "expected [user@]host[:port]".into())
                        })?,
                        v,
                    ))
                }
                "password" => {
                    return Err(err(
                        Some(v),
                        &field,
                        "password login is not supported; use identity_file".into(),
                    ));
                }
                other => {
                    return Err(err(
                        Some(k),
                        &field,
                        format!(
                            "unknown field '{other}' (allowed: hosts, user, identity_file, port, proxy_jump)"
                        ),
                    ));
                }
            }
        }
        let Some(hosts) = hosts_node.and_then(Node::as_seq).filter(|h| !h.is_empty()) else {
            return Err(err(
                hosts_node.or(Some(value)),
                &format!("{name}.hosts"),
                "expected a non-empty list of hosts".into(),
            ));
        };
        let mut targets = Vec::new();
        for (i, host) in hosts.iter().enumerate() {
            let field = format!("{name}.hosts[{i}]");
            let mut target = SshTarget {
                host: String::new(),
                port,
                user: user.clone().unwrap_or_default(),
                identity_file: identity.clone(),
                jump: None,
                proxy_command: None,
            };
            let mut host_jump = jump.clone();
            if let Some(ip) = text_of(host) {
                target.host = ip;
            } else if let Some(map) = host.as_map() {
                for (k, v) in map {
                    let sub = format!("{field}.{}", k.key_text());
                    match k.key_text().as_str() {
                        "ip" => {
                            target.host = text_of(v)
                                .ok_or_else(|| err(Some(v), &sub, "expected an address".into()))?
                        }
                        "user" => {
                            target.user = text_of(v)
                                .ok_or_else(|| err(Some(v), &sub, "expected a string".into()))?
                        }
                        "identity_file" => {
                            target.identity_file =
                                Some(expand(&text_of(v).ok_or_else(|| {
                                    err(Some(v), &sub, "expected a path".into())
                                })?))
                        }
                        "port" => {
                            target.port = port_of(v).ok_or_else(|| {
                                err(
                                    Some(v),
                                    &sub,
                                    format!("'{}' is not a port (1-65535)", v.key_text()),
                                )
                            })?
                        }
                        "proxy_jump" => {
                            host_jump = Some((
                                text_of(v).ok_or_else(|| {
                                    err(Some(v), &sub, "expected [user@]host[:port]".into())
                                })?,
                                v,
                            ))
                        }
                        "password" => {
                            return Err(err(
                                Some(v),
                                &sub,
                                "password login is not supported; use identity_file".into(),
                            ));
                        }
                        other => {
                            return Err(err(
                                Some(k),
                                &sub,
                                format!(
                                    "unknown field '{other}' (allowed: ip, user, identity_file, port, proxy_jump)"
                                ),
                            ));
                        }
                    }
                }
            } else {
                return Err(err(
                    Some(host),
                    &field,
                    "expected an address or {ip, user, identity_file, port}".into(),
                ));
            }
            if target.host.is_empty() {
                return Err(err(Some(host), &format!("{field}.ip"), "missing".into()));
            }
            if target.user.is_empty() {
                return Err(err(
                    Some(host),
                    &format!("{field}.user"),
                    format!(
                        "no user for host {} (set `user` on the pool or the host)",
                        target.host
                    ),
                ));
            }
            if let Some((text, node)) = host_jump {
                let bastion = parse_jump(&text, &target).ok_or_else(|| {
                    err(
                        Some(node),
                        &format!("{field}.proxy_jump"),
                        format!("'{text}' is not [user@]host[:port]"),
                    )
                })?;
                target.jump = Some(Box::new(bastion));
            }
            targets.push(target);
        }
        pools.push(NodePool {
            name,
            hosts: targets,
        });
    }
    Ok(pools)
}

/// `[user@]host[:port]` as a bastion for `host`: its user and key unless named.
fn parse_jump(text: &str, host: &SshTarget) -> Option<SshTarget> {
    let (user, rest) = match text.trim().split_once('@') {
        Some((u, r)) => (u.to_owned(), r),
        None => (host.user.clone(), text.trim()),
    };
    let (addr, port) = match rest.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') => (a, p.parse::<u16>().ok().filter(|p| *p > 0)?),
        _ => (rest, 22),
    };
    if addr.is_empty() || user.is_empty() || addr.contains(char::is_whitespace) {
        return None;
    }
    Some(SshTarget {
        host: addr.to_owned(),
        port,
        user,
        identity_file: host.identity_file.clone(),
        jump: None,
        proxy_command: None,
    })
}

fn text_of(node: &Node) -> Option<String> {
    match node.scalar()? {
        Scalar::Str(s) => Some(s.clone()),
        Scalar::Int(_) | Scalar::Float(_) => Some(node.key_text()),
        _ => None,
    }
}

fn port_of(node: &Node) -> Option<u16> {
    match node.scalar()? {
        Scalar::Int(i) => u16::try_from(*i).ok().filter(|p| *p > 0),
        Scalar::Str(s) => s.trim().parse().ok().filter(|p: &u16| *p > 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_skypilot_pools_with_host_overrides() {
        let text = "gpus:\n  user: ubuntu\n  identity_file: /keys/id\n  hosts:\n    - 10.0.0.1\n    - ip: 10.0.0.2\n      user: root\n      port: 2222\n";
        let pools = parse(text, Path::new("p.yaml")).expect("valid");
        assert_eq!(pools.len(), 1);
        let hosts = &pools[0].hosts;
        assert_eq!(pools[0].name, "gpus");
        assert_eq!(hosts[0].to_string(), "ubuntu@10.0.0.1:22");
        assert_eq!(
            hosts[0].identity_file.as_deref(),
            Some(Path::new("/keys/id"))
        );
        assert_eq!(hosts[1].to_string(), "root@10.0.0.2:2222");
    }

    #[test]
    fn a_proxy_jump_applies_to_every_host_unless_a_host_names_its_own() {
        let text = "p:\n  user: u\n  identity_file: /k\n  proxy_jump: bastion.example:2200\n  hosts:\n    - 10.0.0.1\n    - ip: 10.0.0.2\n      proxy_jump: ops@jump2\n";
        let pools = parse(text, Path::new("p.yaml")).expect("valid");
        let hosts = &pools[0].hosts;
        let first = hosts[0].jump.as_deref().expect("pool-wide jump");
        assert_eq!(first.to_string(), "u@bastion.example:2200");
        assert_eq!(first.identity_file.as_deref(), Some(Path::new("/k")));
        let second = hosts[1].jump.as_deref().expect("host's own jump");
        assert_eq!(second.to_string(), "ops@jump2:22");
        let e = parse(
            "p:\n  user: u\n  hosts:\n    - ip: a\n      proxy_jump: 'b:99999'\n",
            Path::new("p.yaml"),
        )
        .expect_err("bad port");
        assert!(
            e.to_string()
                .contains("p.hosts[0].proxy_jump: 'b:99999' is not [user@]host[:port]"),
            "{e}"
        );
    }

    #[test]
    fn bad_pools_name_the_file_line_and_field() {
        let cases = [
            ("p:\n  user: u\n", "p.hosts: expected a non-empty list"),
            (
                "p:\n  hosts: [1.2.3.4]\n",
                "p.hosts[0].user: no user for host 1.2.3.4",
            ),
            (
                "p:\n  user: u\n  hosts: [{ip: a, port: 70000}]\n",
                "p.hosts[0].port: '70000' is not a port",
            ),
            (
                "p:\n  user: u\n  pasword: x\n  hosts: [a]\n",
                "unknown field 'pasword'",
            ),
            (
                "p:\n  user: u\n  password: x\n  hosts: [a]\n",
                "password login is not supported",
            ),
        ];
        for (text, expected) in cases {
            let e = parse(text, Path::new("/h/ssh_node_pools.yaml")).expect_err(text);
            let msg = e.to_string();
            assert!(msg.starts_with("/h/ssh_node_pools.yaml:"), "{msg}");
            assert!(msg.contains(expected), "{msg} should contain {expected}");
        }
    }
}
