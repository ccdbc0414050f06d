#!/usr/bin/env bash
# Builds the installable desktop package (default: a .deb) with the sky-agent binary that local
# and remote clusters need, carried as a Tauri sidecar (`bundle.externalBin`). The .deb installs
# it as /usr/bin/sky-agent next to /usr/bin/sky-desktop, where sky-core's find_agent_binary looks
# first (the directory of the running executable), so the installed app needs no configuration.
# Usage: src-tauri/bundle.sh [deb|dmg|msi|...]
#
# Size and start-up: the release profile is tightened here, for the bundle only (symbols
# stripped, size-optimised code); the workspace's own release profile is left to the CLI.
# Long on 2 cores: run it under `nice -n 19` with a dedicated CARGO_TARGET_DIR.
#
# The agent is built for the host triple, which is what clusters run when the host is x86_64
# Linux. On macOS/Windows the sidecar is the host's agent (the local cloud needs it); remote
# clusters there need an x86_64 Linux agent pointed at by SKY_AGENT_BIN. AppImage needs
# downloads and fails offline; .deb works offline.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUNDLES=${1:-deb}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CARGO_PROFILE_RELEASE_STRIP=${CARGO_PROFILE_RELEASE_STRIP:-symbols}
export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
EXE=""
[[ $TRIPLE == *windows* ]] && EXE=".exe"
cargo build --release -p sky-agent
mkdir -p src-tauri/binaries
cp "$CARGO_TARGET_DIR/release/sky-agent$EXE" "src-tauri/binaries/sky-agent-$TRIPLE$EXE"
(cd ui && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run build)
ui/node_modules/.bin/tauri build --bundles "$BUNDLES" --config src-tauri/tauri.bundle.json
ls -l "$CARGO_TARGET_DIR"/release/bundle/*/
