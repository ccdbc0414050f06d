//! Parsers for single resource values shared by the task file and the command line: `infra`,
//! cloud names, `cpus`, `memory`, `disk_size`, `disk_tier` and `ports`, each with SkyPilot's
//! accepted forms.
//!
//! They return a plain message; the caller attaches the field path and position (or the flag).

use std::collections::BTreeSet;

use super::error::one_of;
use super::resources_spec::OTHER_SKYPILOT_CLOUDS;
use super::yaml::{Node, Scalar};
use crate::cloud::CloudId;
use crate::resources::{Amount, DiskTier, MemoryRequest, PortRange};

/// Cloud, region and zone of an `infra` string; `None` for a part left out or `*`.
pub(crate) type InfraParts = (Option<CloudId>, Option<String>, Option<String>);

/// `aws`, `gcp/us-central1`, `gcp/*/us-central1-a`, `*/us-east-1`, `*`.
pub(crate) fn parse_infra(text: &str) -> Result<InfraParts, String> {
    let trimmed = text.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok((None, None, None));
    }
    let parts: Vec<&str> = trimmed.split('/').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "invalid infra '{text}': empty part (expected cloud, cloud/region or cloud/region/zone)"
        ));
    }
    let first = parts[0].to_lowercase();
    if first == "k8s" || first == "kubernetes" {
        return Err(format!(
            "infra '{text}': {first} is not supported by Sky (supported: aws, gcp, azure, local, ssh)"
        ));
    }
    if parts.len() > 3 {
        return Err(format!(
            "invalid infra '{text}': expected cloud, cloud/region or cloud/region/zone"
        ));
    }
    let cloud = if first == "*" {
        None
    } else {
        Some(parse_cloud(parts[0])?)
    };
    let star = |p: Option<&&str>| p.filter(|s| **s != "*").map(|s| (*s).to_owned());
    Ok((cloud, star(parts.get(1)), star(parts.get(2))))
}

pub(crate) fn parse_cloud(text: &str) -> Result<CloudId, String> {
    if let Ok(cloud) = text.parse::<CloudId>() {
        return Ok(cloud);
    }
    let lower = text.trim().to_lowercase();
    if OTHER_SKYPILOT_CLOUDS.contains(&lower.as_str()) {
        return Err(format!(
            "cloud '{text}' is not supported by Sky (supported: aws, gcp, azure, local, ssh)"
        ));
    }
    let names: Vec<&str> = CloudId::ALL.iter().map(|c| c.as_str()).collect();
    let hint = super::error::did_you_mean(&lower, names.iter().copied());
    Err(format!(
        "unknown cloud '{text}'{hint} (allowed: aws, gcp, azure, local, ssh)"
    ))
}

fn amount(text: &str) -> Option<Amount> {
    let (number, at_least) = match text.strip_suffix('+') {
        Some(n) => (n, true),
        None => (text, false),
    };
    let value: f64 = number.trim().parse().ok()?;
    value.is_finite().then_some(Amount { value, at_least })
}

/// `8`, `8.5`, `"8+"`.
pub(crate) fn parse_cpus(node: &Node) -> Result<Option<Amount>, String> {
    let text = match node.scalar() {
        Some(Scalar::Null) => return Ok(None),
        Some(Scalar::Int(i)) => i.to_string(),
        Some(Scalar::Float(f)) => f.to_string(),
        Some(Scalar::Str(s)) => s.clone(),
        _ => {
            return Err(format!(
                "expected a number or \"<number>+\", got {}: {}",
                node.kind_name(),
                node.show()
            ));
        }
    };
    parse_cpus_str(&text).map(Some)
}

pub(crate) fn parse_cpus_str(text: &str) -> Result<Amount, String> {
    let a = amount(text.trim())
        .ok_or_else(|| format!("invalid cpus '{text}': expected a number (e.g. 8) or \"<number>+\" for at least (e.g. 8+)"))?;
    if a.value <= 0.0 {
        return Err(format!("cpus must be positive, got '{text}'"));
    }
    Ok(a)
}

/// `32`, `"32+"`, `"16GB"`, `"512MB"`, `"4x"` (GiB per vCPU).
pub(crate) fn parse_memory(node: &Node) -> Result<Option<MemoryRequest>, String> {
    let text = match node.scalar() {
        Some(Scalar::Null) => return Ok(None),
        Some(Scalar::Int(i)) => i.to_string(),
        Some(Scalar::Float(f)) => f.to_string(),
        Some(Scalar::Str(s)) => s.clone(),
        _ => {
            return Err(format!(
                "expected a number, \"<number>+\" or \"<number>x\", got {}: {}",
                node.kind_name(),
                node.show()
            ));
        }
    };
    parse_memory_str(&text).map(Some)
}

pub(crate) fn parse_memory_str(text: &str) -> Result<MemoryRequest, String> {
    let bad = || {
        format!(
            "invalid memory '{text}': expected GiB as a number (16), with a unit (16GB), \"<number>+\" for at least (16+) or \"<number>x\" for GiB per vCPU (4x)"
        )
    };
    let trimmed = text.trim();
    if let Some(per_cpu) = trimmed.strip_suffix('x') {
        let value: f64 = per_cpu.parse().map_err(|_| bad())?;
        if !(value.is_finite() && value > 0.0) {
            return Err(format!("memory must be positive, got '{text}'"));
        }
        return Ok(MemoryRequest::PerCpu(Amount {
            value,
            at_least: true,
        }));
    }
    let (number, at_least) = match trimmed.strip_suffix('+') {
        Some(n) => (n, true),
        None => (trimmed, false),
    };
    let value = size_in_gib(number, false).ok_or_else(bad)?;
    if value <= 0.0 {
        return Err(format!("memory must be positive, got '{text}'"));
    }
    Ok(MemoryRequest::Gib(Amount { value, at_least }))
}

/// A size in GiB: a bare number is already GiB; units KB..PB (and KiB-style `Ki`) are binary, as
/// SkyPilot's `parse_memory_resource` treats them. With `whole`, fractional results are refused.
fn size_in_gib(text: &str, whole: bool) -> Option<f64> {
    if let Ok(v) = text.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    let lower = text.to_lowercase();
    const UNITS: [(&str, f64); 10] = [
        ("kb", -2.0),
        ("ki", -2.0),
        ("mb", -1.0),
        ("mi", -1.0),
        ("gb", 0.0),
        ("gi", 0.0),
        ("tb", 1.0),
        ("ti", 1.0),
        ("pb", 2.0),
        ("pi", 2.0),
    ];
    for (unit, power) in UNITS {
        if let Some(number) = lower.strip_suffix(unit) {
            let v: f64 = number.parse().ok()?;
            let gib = v * 1024f64.powf(power);
            if whole && gib.fract() != 0.0 {
                return None;
            }
            return Some(gib);
        }
    }
    None
}

/// `256`, `"1TB"` -> GB. `None` for null.
pub(crate) fn parse_disk_size(node: &Node) -> Result<Option<u32>, String> {
    let bad = || {
        format!(
            "invalid disk_size {}: expected a whole number of GB (256) or a size with a unit (\"1TB\")",
            node.show()
        )
    };
    let gb = match node.scalar() {
        Some(Scalar::Null) => return Ok(None),
        Some(Scalar::Int(i)) => *i as f64,
        Some(Scalar::Str(s)) => {
            // SkyPilot's pattern: whole digits, then an optional unit (`100`, `1TB`, `512Gi`).
            let digits = s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic());
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            size_in_gib(s.trim(), true).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    if gb.fract() != 0.0 || gb <= 0.0 || gb > f64::from(u32::MAX) {
        return Err(format!(
            "disk_size must be a positive whole number of GB, got {}",
            node.show()
        ));
    }
    Ok(Some(gb as u32))
}

pub(crate) fn parse_disk_tier(text: &str) -> Result<DiskTier, String> {
    const ALLOWED: [&str; 5] = ["low", "medium", "high", "ultra", "best"];
    match text.to_lowercase().as_str() {
        "low" => Ok(DiskTier::Low),
        "medium" => Ok(DiskTier::Medium),
        "high" => Ok(DiskTier::High),
        "ultra" => Ok(DiskTier::Ultra),
        "best" => Ok(DiskTier::Best),
        _ => Err(format!(
            "invalid disk_tier '{text}' (allowed: {})",
            one_of(&ALLOWED)
        )),
    }
}

/// `8080`, `"8080"`, `"10000-10010"`, `"80,443"` or a list of those; merged into sorted ranges.
pub(crate) fn parse_ports(node: &Node) -> Result<Vec<PortRange>, String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut take = |n: &Node| -> Result<(), String> {
        let text = match n.scalar() {
            Some(Scalar::Int(i)) => i.to_string(),
            Some(Scalar::Str(s)) => s.clone(),
            _ => {
                return Err(format!(
                    "expected a port (8080), a range (\"10000-10010\") or a list of them, got {}: {}",
                    n.kind_name(),
                    n.show()
                ));
            }
        };
        tokens.extend(
            text.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        );
        Ok(())
    };
    match node.as_seq() {
        _ if node.is_null() => return Ok(Vec::new()),
        Some(items) => items.iter().try_for_each(&mut take)?,
        None => take(node)?,
    }
    ports_from_tokens(&tokens)
}

pub(crate) fn ports_from_tokens(tokens: &[String]) -> Result<Vec<PortRange>, String> {
    let port = |s: &str, whole: &str| -> Result<u16, String> {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p >= 1 && s.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| format!("invalid port '{whole}': use a port number between 1 and 65535"))
    };
    let mut set = BTreeSet::new();
    for token in tokens {
        match token.split_once('-') {
            None => {
                set.insert(port(token, token)?);
            }
            Some((from, to)) => {
                let range_err = || {
                    format!(
                        "invalid port range '{token}': use \"from-to\" with from <= to, e.g. \"10000-10010\""
                    )
                };
                let (from, to) = (
                    port(from, token).map_err(|_| range_err())?,
                    port(to, token).map_err(|_| range_err())?,
                );
                if from > to {
                    return Err(range_err());
                }
                set.extend(from..=to);
            }
        }
    }
    let mut ranges: Vec<PortRange> = Vec::new();
    for p in set {
        match ranges.last_mut() {
            Some(last) if u32::from(last.end) + 1 == u32::from(p) => last.end = p,
            _ => ranges.push(PortRange { start: p, end: p }),
        }
    }
    Ok(ranges)
}
