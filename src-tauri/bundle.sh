#!/usr/bin/env bash
# Builds the installable desktop package (default: a .deb) with the sky-agent binary that local
# and remote clusters need, carried as a Tauri sidecar (`bundle.externalBin`). The .deb installs
# it as /usr/bin/sky-agent next to /usr/bin/sky-desktop, where sky-core's find_agent_binary looks
# first (the directory of the running executable), so the installed app needs no configuration.
# The app binary is also the `sky` CLI; the .deb's postinst links /usr/bin/sky to it.
# Usage: src-tauri/bundle.sh [deb|dmg|msi|...]
#
# Size: the release profile is tightened here, for the bundle only, as Tauri's size guide does:
# one codegen unit with fat LTO (dead code across crates goes), size-optimised code, panic=abort
# (no unwinding tables or landing pads; a panic ends the app, whose state is in SQLite
# transactions). Symbols are stripped after the build rather than by the profile, so the same
# build can be inspected for what takes the space. The workspace's own release profile is left
# to the CLI. Long on 2 cores (about an hour cold): run it under `nice -n 19` with a dedicated
# CARGO_TARGET_DIR.
#
# The agent is built for the host triple, which is what clusters run when the host is x86_64
# Linux (it needs glibc 2.34 or newer: Ubuntu 22.04, Debian 12, RHEL 9). On macOS/Windows the
# sidecar is the host's agent (the local cloud needs it); remote clusters there need an x86_64
# Linux agent pointed at by SKY_AGENT_BIN. AppImage needs downloads and fails offline; .deb works
# offline.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUNDLES=${1:-deb}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_PROFILE_RELEASE_LTO=${CARGO_PROFILE_RELEASE_LTO:-fat}
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-1}
export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s}
export CARGO_PROFILE_RELEASE_PANIC=${CARGO_PROFILE_RELEASE_PANIC:-abort}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
EXE=""
[[ $TRIPLE == *windows* ]] && EXE=".exe"
(cd ui && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run build)
# The agent keeps unwinding: it owns running jobs, and a panic in one of its tasks must not take
# the queue down with it.
CARGO_PROFILE_RELEASE_PANIC=unwind cargo build --release -p sky-agent
cargo build --release -p sky-desktop --features sky-desktop/custom-protocol
APP="$CARGO_TARGET_DIR/release/sky-desktop$EXE"
AGENT="$CARGO_TARGET_DIR/release/sky-agent$EXE"
mkdir -p src-tauri/binaries
cp "$AGENT" "src-tauri/binaries/sky-agent-$TRIPLE$EXE"
case "$TRIPLE" in
  *linux*) strip --strip-all "$APP" "src-tauri/binaries/sky-agent-$TRIPLE$EXE" ;;
  *darwin*) strip -x "$APP" "src-tauri/binaries/sky-agent-$TRIPLE$EXE" ;;
esac
ui/node_modules/.bin/tauri bundle --bundles "$BUNDLES" --config src-tauri/tauri.bundle.json
ls -l "$CARGO_TARGET_DIR"/release/bundle/*/
