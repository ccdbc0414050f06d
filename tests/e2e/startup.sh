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

TMP=$(mktemp -d /tmp/sky-startup.XXXXXX)
PIDS=()
cleanup() {
  local status=$?
  # The launch check leaves a local cluster whose agent daemon outlives the app: end it by its pid.
  for pidfile in "$TMP"/sky-home/local/*/agent/agent.pid; do
    [[ -f "$pidfile" ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT INT TERM
export HOME="$TMP/home" SKY_HOME="$TMP/sky-home"
export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share" XDG_CACHE_HOME="$HOME/.cache"
export XDG_STATE_HOME="$HOME/.local/state" XDG_RUNTIME_DIR="$TMP/runtime"
mkdir -p "$HOME" "$SKY_HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
export NO_AT_BRIDGE=1 RUST_LOG=${RUST_LOG:-warn}

echo -n pw | gnome-keyring-daemon --foreground --unlock --components=secrets >"$TMP/keyring.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do
  dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
    string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true' && break
  sleep 0.1
done
DISPLAY_NUM=$((90 + RANDOM % 100))
Xvfb ":$DISPLAY_NUM" -screen 0 1280x900x24 -nolisten tcp >"$TMP/xvfb.log" 2>&1 &
PIDS+=($!)
export DISPLAY=":$DISPLAY_NUM"
for _ in $(seq 50); do [[ -e "/tmp/.X11-unix/X$DISPLAY_NUM" ]] && break; sleep 0.1; done
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

PORT=$((4500 + RANDOM % 400))
tauri-driver --port "$PORT" --native-port $((PORT + 1)) >"$TMP/driver.log" 2>&1 &
PIDS+=($!)
mkdir -p "$ROOT/artifacts"
export SKY_E2E_PORT="$PORT" SKY_STARTUP_OUT="$ROOT/artifacts/desktop-release-metrics.json"
node "$ROOT/tests/e2e/startup.mjs" || { tail -n 40 "$TMP/driver.log" >&2; exit 1; }
