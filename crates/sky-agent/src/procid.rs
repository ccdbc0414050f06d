//! A process's identity beyond its number: pids are reused (soon after a reboot, always
//! eventually), so a recorded pid alone does not prove a process is still the one we started.
//! The identity is the boot id plus the process's start time in clock ticks since boot
//! (`/proc/<pid>/stat` field 22): equal only for the same process of the same boot.

/// `"<boot id>:<start ticks>"` of `pid`, or `None` when this system has no such `/proc` entries
/// (or the process is gone).
pub fn identity(pid: u32) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let start = start_ticks(&stat)?;
    Some(format!("{}:{start}", boot.trim()))
}

/// Field 22 of a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
/// itself hold spaces and parentheses, so fields are counted after the last `)`, where field 3
/// begins.
fn start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether `pid` is still the process recorded as `recorded`. No record means no proof.
pub fn still_same(pid: u32, recorded: Option<&str>) -> bool {
    match (recorded, identity(pid)) {
        (Some(recorded), Some(now)) => recorded == now,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_parentheses() {
        let line =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(start_ticks(line), Some(987_654));
    }

    #[test]
    fn own_process_matches_and_a_changed_record_does_not() {
        let me = std::process::id();
        let Some(id) = identity(me) else {
            // Not Linux: there is nothing to record, and recovery then signals nothing.
            assert!(!still_same(me, Some("x:1")));
            return;
        };
        assert!(still_same(me, Some(&id)));
        assert!(!still_same(me, Some(&format!("{id}0"))));
        assert!(!still_same(me, None));
    }
}
