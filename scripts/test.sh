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

step "format"
cargo fmt --all --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "unit and integration tests"
# One build serves the sky binary, the agent and every test binary.
cargo build --locked --bins -p sky-cli -p sky-agent
cargo nextest run --workspace --locked --no-fail-fast
cargo test --workspace --doc --locked

if [ -f ui/package.json ]; then
  step "ui unit tests"
  (cd ui && npm ci --no-audit --no-fund && npm test)
fi

if [ "${SKY_TEST_SKIP_GUI:-0}" != 1 ] && [ -x tests/e2e/run.sh ]; then
  step "desktop app in a real window"
  tests/e2e/run.sh
fi

step "hermeticity"
if [ "$home_sky_before" = no ] && [ -e "$HOME/.sky" ]; then
  echo "a test wrote to the real ~/.sky" >&2
  exit 1
fi
echo "all tests passed"
