#!/usr/bin/env bash
# Runs every test of Sky, from a fresh Debian machine with Rust: installs the system and npm
# packages the tests need, starts the services they need (Xvfb, D-Bus, gnome-keyring), and stops
# them again. CI calls exactly this (see .ci/run).
#
#   scripts/test.sh            everything
#   SKY_TEST_SKIP_GUI=1 ...    skip the desktop app's real-window tests (for quick local loops)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

install_system_packages
install_cargo_tools

# Tests must never touch the real home: CI asserts ~/.sky stays absent.
home_sky_before=$(test -e "$HOME/.sky" && echo yes || echo no)

# The desktop app embeds ui/dist at compile time, so the UI is built before any cargo step, and
# every cargo step uses the same features so that one compile serves lint, tests and the e2e run.
FEATURES=(--features sky-desktop/custom-protocol)

step "ui: install, typecheck, unit tests, build"
(cd ui && npm ci --no-audit --no-fund && npm run typecheck && npm test && npm run build)

step "format"
cargo fmt --all --check

step "lint"
cargo clippy --workspace --all-targets --locked "${FEATURES[@]}" -- -D warnings

step "unit and integration tests"
# The end-to-end tests run the real `sky` and `sky-agent` binaries, which a test build alone does
# not produce for packages without integration tests of their own.
cargo build --workspace --bins --locked "${FEATURES[@]}"
cargo nextest run --workspace --locked "${FEATURES[@]}" --no-fail-fast
cargo test --workspace --doc --locked "${FEATURES[@]}"

if [ "${SKY_TEST_SKIP_GUI:-0}" != 1 ]; then
  step "desktop app in a real window (Xvfb, D-Bus, gnome-keyring, tauri-driver)"
  bash tests/e2e/run.sh
fi

step "hermeticity"
if [ "$home_sky_before" = no ] && [ -e "$HOME/.sky" ]; then
  echo "a test wrote to the real ~/.sky" >&2
  exit 1
fi
echo "all tests passed"
