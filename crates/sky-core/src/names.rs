//! The one cluster-name rule, and how a cluster name becomes a name a cloud accepts.
//!
//! A cluster name is checked here once, at the front door ([`check_cluster_name`]), before any
//! record, lock, directory or cloud resource exists: the CLI and the desktop app reach it through
//! the `Sky` facade alike. Uniqueness is the state store's (case-insensitive, in one transaction:
//! `StateStore::create`); this module says what a name may look like.
//!
//! Clouds are stricter than the rule (GCP: lowercase, no `_` or `.`; Azure host names: no `_`,
//! at most 64 characters with the node's rank), so providers derive their resource names with
//! [`cloud_name`] and [`capped`]: a name the cloud accepts as it is stays as it is (so clusters
//! launched by earlier versions are found again), any other is lowered, has every other character
//! replaced by `-`, and is cut to fit with a hash of the exact name appended, so two different
//! cluster names never share a cloud name. The derivation is a pure function of the name that
//! `down` and `refresh` recompute; changing it would lose clusters already running, so treat it
//! like a stored format. What this module does not do: talk to a cloud or the database.

/// The longest cluster name, in characters (SkyPilot's limit on most clouds).
pub const MAX_LEN: usize = 63;

/// The rule, as the error messages state it.
pub const RULE: &str = "cluster names are 1-63 characters: letters, digits, '-', '_' and '.', \
starting with a letter and ending with a letter or digit; they are compared case-insensitively";

/// Device names Windows reserves in every directory (with any extension): a cluster name becomes
/// a file name under the Sky home (locks, host-key pins, local node directories).
const WINDOWS_DEVICES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// A cluster name that breaks the rule: which name, what is wrong with it, and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cluster name '{name}': {problem}; {}", RULE)]
pub struct NameError {
    pub name: String,
    pub problem: String,
}

/// Checks `name` against the rule (see [`RULE`]); the error says which part failed.
pub fn check_cluster_name(name: &str) -> Result<(), NameError> {
    let fail = |problem: String| {
        Err(NameError {
            name: name.escape_debug().to_string(),
            problem,
        })
    };
    let Some(first) = name.chars().next() else {
        return fail("it is empty".into());
    };
    let len = name.chars().count();
    if len > MAX_LEN {
        return fail(format!("it is {len} characters long"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return fail(format!("'{}' is not allowed", c.escape_debug()));
    }
    if !first.is_ascii_alphabetic() {
        return fail(format!("it starts with '{first}'"));
    }
    if let Some(last) = name.chars().last().filter(|c| !c.is_ascii_alphanumeric()) {
        return fail(format!("it ends with '{last}'"));
    }
    let stem = name.split('.').next().unwrap_or(name).to_ascii_lowercase();
    if WINDOWS_DEVICES.contains(&stem.as_str()) {
        return fail(format!(
            "'{stem}' is a device name on Windows, where it cannot be a file name"
        ));
    }
    Ok(())
}

/// Whether `name` can safely name a file under the Sky home (one path component, no traversal):
/// what commands acting on an existing cluster require, since records from earlier versions may
/// predate parts of the rule and must stay reachable.
pub fn check_path_safe(name: &str) -> Result<(), NameError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 255
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        Err(NameError {
            name: name.escape_debug().to_string(),
            problem: "it cannot be a file name".into(),
        })
    } else {
        Ok(())
    }
}

/// A stable 32-bit hash of `name` (FNV-1a, unlike std's hasher the same in every Rust release),
/// as 8 hex digits: what keeps derived names of different clusters apart.
pub fn name_hash(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    // The trailing 0xff is part of the hash GCP names have carried since Sky's first release.
    for b in name.bytes().chain(std::iter::once(0xff)) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", h as u32)
}

/// `name` as a DNS-label-like cloud name of at most `max_len` characters: letters, digits and `-`,
/// starting with a letter and not ending with `-`, lowercase unless `capitals` (Azure keeps case;
/// GCP does not). A name that already fits is returned as it is; any other is lowered, has every
/// other character replaced by `-`, is cut and gets `-` + [`name_hash`] of the exact name.
pub fn cloud_name(name: &str, max_len: usize, capitals: bool) -> String {
    let letter = |c: char| c.is_ascii_lowercase() || (capitals && c.is_ascii_uppercase());
    let plain = name.len() <= max_len
        && name.starts_with(letter)
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| letter(c) || c.is_ascii_digit() || c == '-');
    if plain {
        return name.to_owned();
    }
    let keep = max_len.saturating_sub(9);
    let mut safe: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(keep)
        .collect();
    if !safe.starts_with(|c: char| c.is_ascii_lowercase()) {
        safe.insert(0, 'c');
        safe.truncate(keep);
    }
    format!("{safe}-{}", name_hash(name))
}

/// `text` cut to at most `max_len` bytes, with `-` + [`name_hash`] of the whole text in place of
/// the end when it had to be cut (for names whose characters are fine but length is not, such as
/// Azure resource groups). `text` is ASCII in practice; a cut never splits a character.
pub fn capped(text: &str, max_len: usize) -> String {
    if text.len() <= max_len {
        return text.to_owned();
    }
    let mut end = max_len.saturating_sub(9);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{}", &text[..end], name_hash(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_accepts_skypilot_names_up_to_63_characters() {
        for ok in [
            "a",
            "dev",
            "Dev",
            "my_cluster.v2",
            "a-b_c.d9",
            &"x".repeat(63),
            "con1",
            "cons",
        ] {
            assert_eq!(check_cluster_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn the_rule_names_the_value_the_problem_and_what_is_allowed() {
        let cases = [
            ("", "it is empty"),
            (&"x".repeat(64) as &str, "it is 64 characters long"),
            ("my cluster", "' ' is not allowed"),
            ("a/b", "'/' is not allowed"),
            ("ünï", "'ü' is not allowed"),
            ("1abc", "it starts with '1'"),
            ("-abc", "it starts with '-'"),
            ("abc_", "it ends with '_'"),
            ("abc.", "it ends with '.'"),
            ("CON", "'con' is a device name on Windows"),
            ("nul.x", "'nul' is a device name on Windows"),
        ];
        for (name, problem) in cases {
            let err = check_cluster_name(name).expect_err(name);
            let text = err.to_string();
            assert!(text.contains(problem), "{name}: {text}");
            assert!(
                text.contains(&format!("'{}'", name.escape_debug())),
                "{text}"
            );
            assert!(text.contains(RULE), "{text}");
        }
        let text = check_cluster_name("a\nb").expect_err("newline").to_string();
        assert!(text.contains("'a\\nb'") && !text.contains('\n'), "{text}");
    }

    #[test]
    fn path_safety_refuses_traversal_only() {
        for bad in ["", ".", "..", "a/b", "..\\x", "a\0b"] {
            assert!(check_path_safe(bad).is_err(), "{bad:?}");
        }
        for ok in ["dev", "CON", "old_name.", "1x"] {
            assert!(check_path_safe(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn cloud_names_keep_what_fits_and_derive_the_rest() {
        assert_eq!(cloud_name("train-1", 52, false), "train-1");
        assert_eq!(cloud_name("Dev", 53, true), "Dev");
        // Golden values: GCP instances launched by earlier versions carry exactly these.
        assert_eq!(
            cloud_name("My_Cluster.1", 52, false),
            "my-cluster-1-523c2b04"
        );
        assert_eq!(cloud_name("_x", 52, false), "c-x-0cd090a7");
        assert_eq!(cloud_name("Dev", 52, false), "dev-43f678f9");
        assert_eq!(
            cloud_name(&"x".repeat(63), 52, false),
            format!("{}-b56cd2c0", "x".repeat(43))
        );
        for (name, max, caps) in [
            ("my_cluster", 53, true),
            ("a.b", 53, true),
            (&"Q".repeat(63) as &str, 53, true),
            ("Dev", 52, false),
        ] {
            let n = cloud_name(name, max, caps);
            assert!(n.len() <= max, "{n}");
            assert!(n.starts_with(|c: char| c.is_ascii_alphabetic()), "{n}");
            assert!(!n.ends_with('-'), "{n}");
            assert!(
                n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{n}"
            );
            if !caps {
                assert!(!n.chars().any(|c| c.is_ascii_uppercase()), "{n}");
            }
        }
    }

    #[test]
    fn names_that_differ_only_in_underscore_dash_dot_or_case_never_share_a_cloud_name() {
        let names = [
            "my-cluster",
            "my_cluster",
            "my.cluster",
            "My-Cluster",
            "MY_CLUSTER",
        ];
        for (max, caps) in [(52, false), (53, true)] {
            let derived: std::collections::BTreeSet<String> =
                names.iter().map(|n| cloud_name(n, max, caps)).collect();
            assert_eq!(derived.len(), names.len(), "{derived:?}");
        }
        // Where case is kept (Azure), names differing only in case stay apart only by case; Azure
        // compares case-insensitively, which is why one Sky home never holds both.
        let lowered: std::collections::BTreeSet<String> =
            ["my-cluster", "my_cluster", "my.cluster"]
                .iter()
                .map(|n| cloud_name(n, 53, true).to_ascii_lowercase())
                .collect();
        assert_eq!(lowered.len(), 3, "{lowered:?}");
        // Long names that differ only past the cut differ by their hash.
        let a = format!("{}a", "x".repeat(62));
        let b = format!("{}b", "x".repeat(62));
        assert_ne!(cloud_name(&a, 52, false), cloud_name(&b, 52, false));
        assert_ne!(capped(&a, 40), capped(&b, 40));
    }

    #[test]
    fn capped_keeps_short_text_and_cuts_long_text_with_a_hash() {
        assert_eq!(capped("sky-dev-tester", 90), "sky-dev-tester");
        let long = format!("sky-{}-{}", "c".repeat(63), "u".repeat(40));
        let cut = capped(&long, 90);
        assert_eq!(cut.len(), 90, "{cut}");
        assert!(
            cut.starts_with("sky-ccc") && cut.ends_with(&name_hash(&long)),
            "{cut}"
        );
        assert_eq!(capped(&long, 90), cut, "stable");
    }
}
