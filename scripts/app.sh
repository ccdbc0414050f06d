#!/usr/bin/env bash
# Builds and opens the Sky desktop app on its embedded defaults: the local cloud (runs tasks on this
# machine), the embedded price catalog (compares every cloud offline), state in SQLite under
# $SKY_HOME (default ~/.local/share/sky; see the README). Installs what a fresh Debian machine with Rust lacks first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

install_system_packages
step "building the UI"
(cd ui && npm ci --no-audit --no-fund && npm run build)
step "building sky, sky-agent and the desktop app"
# The same profile and features as scripts/test.sh, so either command reuses the other's build.
cargo build --locked -p sky-cli -p sky-agent -p sky-desktop --features sky-desktop/custom-protocol
step "starting Sky"
exec target/debug/sky-desktop "$@"
