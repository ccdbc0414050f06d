#!/usr/bin/env bash
# Release figures of the desktop app: cold start to an interactive window (median of repeated
# starts) and idle RSS of the app and of WebKit's processes, under Xvfb with a private D-Bus
# session and an unlocked keyring like run.sh. Start-up is measured twice: started directly, as a
# user's double click does, from exec to the page's own "first page interactive" report (the app
# logs it with the wall clock); and through tauri-driver, from the new-session request to the
# first page answering a script, which adds WebDriver's own session set-up.
# Usage: tests/e2e/startup.sh APP [RUNS]
# (APP: e.g. /usr/bin/sky-desktop after `dpkg -i`, or target/release/sky-desktop). Writes
# artifacts/desktop-release-metrics.json. Not part of the test command: it measures, it asserts
# nothing, and it wants a release build. SKY_STARTUP_LAUNCH=1 adds one launch on the local cloud
# from the window (proof that the app finds the sky-agent it carries).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PATH="$HOME/.cargo/bin:$PATH"

if [[ "${1:-}" != "--inside" ]]; then
  APP=$(readlink -f "${1:?usage: $0 APP [RUNS]}")
  [[ -x "$APP" ]] || { echo "startup: $APP is not an executable" >&2; exit 2; }
  export SKY_E2E_APP="$APP" SKY_STARTUP_RUNS="${2:-7}"
  exec dbus-run-session -- bash "$0" --inside
fi

# shellcheck source=tests/e2e/desktop-session.sh
source "$ROOT/tests/e2e/desktop-session.sh"
TMP=$(mktemp -d /tmp/sky-startup.XXXXXX)
PIDS=()
cleanup() {
  local status=$?
  # The launch check leaves a local cluster whose agent daemon outlives the app.
  stop_local_agents
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT INT TERM
desktop_home "$TMP"
export RUST_LOG=${RUST_LOG:-warn}
start_keyring "$TMP/keyring.log"
start_xvfb "$TMP/xvfb.log"
# Direct starts: exec to the page's first-paint report, read from the app's log.
DIRECT=()
for ((run = 0; run < SKY_STARTUP_RUNS; run++)); do
  log="$TMP/direct-$run.log"
  t0=$(date +%s%3N)
  RUST_LOG=sky_desktop_lib=info "$SKY_E2E_APP" >"$log" 2>&1 &
  app=$!
  ready=""
  for _ in $(seq 400); do
    ready=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -o 'unix_ms=[0-9]*' | head -n 1 | cut -d= -f2) && [[ -n "$ready" ]] && break
    sleep 0.025
  done
  kill "$app" 2>/dev/null || true
  wait "$app" 2>/dev/null || true
  [[ -n "$ready" ]] || { echo "startup: the page never reported its first paint" >&2; tail -n 20 "$log" >&2; exit 1; }
  DIRECT+=($((ready - t0)))
  sleep 0.5
done
export SKY_STARTUP_DIRECT_MS="${DIRECT[*]}"
# WebKitGTK's MiniBrowser, where the distribution ships it, is measured too as the floor.
for mb in /usr/lib/*/webkit2gtk-4.1/MiniBrowser; do
  [[ -x "$mb" ]] || continue
  printf '<!doctype html><meta charset="utf-8"><title>floor</title><h1>hello</h1>\n' >"$TMP/floor.html"
  export SKY_STARTUP_FLOOR="$mb" SKY_STARTUP_FLOOR_PAGE="$TMP/floor.html"
done

start_tauri_driver "$TMP/driver.log"
mkdir -p "$ROOT/artifacts"
export SKY_STARTUP_OUT="$ROOT/artifacts/desktop-release-metrics.json"
node "$ROOT/tests/e2e/startup.mjs" || { tail -n 40 "$TMP/driver.log" >&2; exit 1; }
