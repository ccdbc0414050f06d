#!/usr/bin/env bash
# Builds the installable desktop package: the release app plus the Linux sky-agent binaries that
# remote clusters need, carried as bundle resources (installed under
# /usr/lib/Sky/agents/ by the .deb). Usage: src-tauri/bundle.sh [deb|dmg|msi|...] (default deb).
#
# The agent is built for the host triple; clusters run x86_64 Linux, so on a macOS or Windows
# host add a cross target (e.g. `rustup target add x86_64-unknown-linux-musl`) and set
# SKY_AGENT_TARGET. AppImage needs downloads and fails offline; .deb works offline.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUNDLES=${1:-deb}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TARGET=${SKY_AGENT_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}
cargo build --release -p sky-agent --target "$TARGET"
mkdir -p src-tauri/resources/agents
ARCH=${TARGET%%-*}
cp "$CARGO_TARGET_DIR/$TARGET/release/sky-agent" "src-tauri/resources/agents/sky-agent-$ARCH-linux"
(cd ui && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run build)
ui/node_modules/.bin/tauri build --bundles "$BUNDLES" --config src-tauri/tauri.bundle.json
