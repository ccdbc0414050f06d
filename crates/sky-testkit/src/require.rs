//! What a test does when this machine lacks something it needs (root, sshd, a network
//! namespace): on a developer's machine it says so and returns, but in CI (`CI` set, as every CI
//! system sets it) it fails, so a run never passes by skipping what it was meant to test.

/// Whether this process runs in CI.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Reports that `test` cannot run here because of `why`: panics in CI, else writes a line to
/// stderr for the caller to return after.
#[allow(clippy::print_stderr)]
pub fn cannot_run(test: &str, why: &str) {
    assert!(
        !in_ci(),
        "{test} cannot run on this machine ({why}); in CI (CI is set) that is a failure, not a skip"
    );
    eprintln!("skipping {test}: {why}");
}
