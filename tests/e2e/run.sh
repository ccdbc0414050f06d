#!/usr/bin/env bash
# GUI end-to-end test of the real desktop app window.
#
# Builds the UI and the app, then inside a private D-Bus session (dbus-run-session) starts an
# unlocked gnome-keyring (Secret Service), Xvfb and tauri-driver (+ WebKitWebDriver), and drives
# the window with tests/e2e/e2e.mjs. HOME, the XDG dirs and SKY_HOME point into a temp folder; every
# process started here is ended by PID on exit. Screenshots go to artifacts/screenshots/ and the
# start-up/memory figures to artifacts/desktop-metrics.json.
#
#   tests/e2e/run.sh               one run
#   tests/e2e/run.sh --repeat N    build once, then N runs in a row, each in a fresh session and
#                                  HOME; fails unless all N pass, and says how many did
#
# Needs (Debian): libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libsoup-3.0-dev libxdo-dev
# build-essential pkg-config file xvfb webkit2gtk-driver gnome-keyring dbus-x11 libsecret-tools,
# node >= 20.19 with npm, and `cargo install tauri-driver --locked`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PATH="$HOME/.cargo/bin:$PATH"

REPEAT=1
if [[ "${1:-}" == "--repeat" ]]; then
  REPEAT=${2:-}
  [[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || { echo "e2e: --repeat takes a whole number of runs >= 1, got '${REPEAT}'" >&2; exit 2; }
  shift 2
fi

if [[ "${1:-}" != "--inside" ]]; then
  for tool in Xvfb WebKitWebDriver tauri-driver dbus-run-session gnome-keyring-daemon secret-tool node npm; do
    command -v "$tool" >/dev/null || { echo "e2e: missing $tool (see the header of $0)" >&2; exit 2; }
  done
  echo "e2e: building ui and app"
  (cd ui && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run build)
  # SKY_E2E_PREBUILT=1: the caller (scripts/test.sh) already built the app, the CLI, the agent and
  # the sky-core test binary from this commit with the workspace's features; building them again
  # here per package would resolve features differently and recompile the cloud SDKs.
  if [[ "${SKY_E2E_PREBUILT:-0}" != 1 ]]; then
    cargo build -p sky-desktop --features custom-protocol
  fi
  # The real CLI and agent: the test makes a cluster with `sky`; the app finds `sky-agent` next to
  # its own executable or on PATH, and autostop runs the app itself (it is also the CLI).
  # SKY_E2E_BIN_DIR reuses already built ones (they must come from the same commit).
  if [[ -n "${SKY_E2E_BIN_DIR:-}" ]]; then
    BIN_DIR=$SKY_E2E_BIN_DIR
  else
    cargo build -p sky-cli -p sky-agent
    BIN_DIR=$CARGO_TARGET_DIR/debug
  fi
  export PATH="$BIN_DIR:$PATH" SKY_E2E_SKY="$BIN_DIR/sky"
  unset SKY_PROGRAM
  # The keychain test binary is built here, outside the throwaway session, and run inside it.
  if [[ -n "${SKY_E2E_CORE_TEST:-}" ]]; then
    CORE_TEST=$SKY_E2E_CORE_TEST
  else
    cargo test -p sky-core --lib --no-run credentials 2>&1 | tee "$CARGO_TARGET_DIR/.e2e-core-build.log" | tail -n 3
    CORE_TEST=$(grep -o '(.*deps/sky_core-[0-9a-f]*)' "$CARGO_TARGET_DIR/.e2e-core-build.log" | tr -d '()' | tail -n 1)
  fi
  [[ -x "$CORE_TEST" ]] || { echo "e2e: cannot find the sky-core test binary" >&2; exit 1; }
  export SKY_E2E_CORE_TEST="$CORE_TEST"
  export SKY_E2E_APP="$CARGO_TARGET_DIR/debug/sky-desktop"
  export SKY_E2E_REAL_HOME="$HOME"
  if [[ "$REPEAT" == 1 ]]; then
    exec dbus-run-session -- bash "$0" --inside
  fi
  passed_runs=0
  for ((run = 1; run <= REPEAT; run++)); do
    echo "e2e: run $run of $REPEAT"
    if dbus-run-session -- bash "$0" --inside; then
      passed_runs=$((passed_runs + 1))
    else
      echo "e2e: run $run of $REPEAT failed; its screenshots are in artifacts/screenshots-run$run" >&2
      rm -rf "$ROOT/artifacts/screenshots-run$run"
      cp -r "$ROOT/artifacts/screenshots" "$ROOT/artifacts/screenshots-run$run" 2>/dev/null || true
    fi
  done
  echo "e2e repeat: $passed_runs of $REPEAT runs passed"
  [[ "$passed_runs" == "$REPEAT" ]]
  exit
fi

# --- inside the private D-Bus session ---
# shellcheck source=tests/e2e/desktop-session.sh
source "$ROOT/tests/e2e/desktop-session.sh"
TMP=$(mktemp -d /tmp/sky-e2e.XXXXXX)
PIDS=()
cleanup() {
  local status=$?
  stop_local_agents
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT INT TERM

desktop_home "$TMP"
export RUST_LOG=${RUST_LOG:-info}
start_keyring "$TMP/keyring.log"

echo "e2e: keychain round trip through the Secret Service"
SKY_TEST_SECRET_SERVICE=1 "$SKY_E2E_CORE_TEST" --exact credentials::tests::secret_service_round_trip --nocapture

# The package ships one binary: the app is also the `sky` CLI, under that name or with a subcommand,
# and autostop of a cluster it launched runs the app itself (`<app> stop NAME -y`).
echo "e2e: the app binary is the sky CLI, and its own autostop program"
mkdir -p "$TMP/clibin"
ln -s "$SKY_E2E_APP" "$TMP/clibin/sky"
"$TMP/clibin/sky" show-gpus | grep -q '^A100 ' || { echo "e2e: 'sky show-gpus' through the app printed no A100 row" >&2; exit 1; }
SKY_AGENT_IDLE_UNIT_SECS=1 "$SKY_E2E_APP" launch -y -c e2e-idle --cloud local -i 1 "echo idle" >"$TMP/cli-launch.log" 2>&1 ||
  { cat "$TMP/cli-launch.log" >&2; exit 1; }
for _ in $(seq 120); do
  "$SKY_E2E_APP" status -o json | grep -q '"status": *"STOPPED"' && break
  sleep 0.5
done
"$SKY_E2E_APP" status -o json | grep -q '"status": *"STOPPED"' ||
  { echo "e2e: autostop through the app binary did not stop e2e-idle" >&2; "$SKY_E2E_APP" status >&2; exit 1; }
"$SKY_E2E_APP" down -y e2e-idle >/dev/null
echo "ok: 'sky' is the app; autostop ran '<app> stop' and stopped the cluster"

start_xvfb "$TMP/xvfb.log"
start_tauri_driver "$TMP/driver.log"

export SKY_E2E_TMP="$TMP" SKY_E2E_ARTIFACTS="$ROOT/artifacts"
mkdir -p "$ROOT/artifacts/screenshots"
status=0
node "$ROOT/tests/e2e/e2e.mjs" || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- driver/app log ---" >&2
  tail -n 60 "$TMP/driver.log" >&2 || true
fi
exit "$status"
