# Sourced by run.sh (the GUI e2e) and startup.sh (release figures), inside their private D-Bus
# session: a throwaway HOME, an unlocked keyring, a display and tauri-driver. Each start_* adds
# its process to the caller's PIDS array, which the caller's cleanup ends.

# HOME, SKY_HOME and the XDG directories below $1, so nothing touches the real ones.
desktop_home() {
  export HOME="$1/home" SKY_HOME="$1/sky-home"
  export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share" XDG_CACHE_HOME="$HOME/.cache"
  export XDG_STATE_HOME="$HOME/.local/state" XDG_RUNTIME_DIR="$1/runtime"
  mkdir -p "$HOME" "$SKY_HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" "$XDG_RUNTIME_DIR"
  chmod 700 "$XDG_RUNTIME_DIR"
  export NO_AT_BRIDGE=1
}

# Secret Service: a fresh login keyring, created and unlocked with a throwaway password ($1: log).
start_keyring() {
  echo -n pw | gnome-keyring-daemon --foreground --unlock --components=secrets >"$1" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do
    dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
      string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true' && return 0
    sleep 0.1
  done
}

# An Xvfb display on a random number; exports DISPLAY ($1: log).
start_xvfb() {
  local num=$((90 + RANDOM % 100))
  Xvfb ":$num" -screen 0 1280x900x24 -nolisten tcp >"$1" 2>&1 &
  PIDS+=($!)
  export DISPLAY=":$num"
  for _ in $(seq 50); do [[ -e "/tmp/.X11-unix/X$num" ]] && return 0; sleep 0.1; done
}

# tauri-driver on a random port (WebKitWebDriver on the next one); exports SKY_E2E_PORT ($1: log).
start_tauri_driver() {
  local port=$((4500 + RANDOM % 400))
  tauri-driver --port "$port" --native-port $((port + 1)) >"$1" 2>&1 &
  PIDS+=($!)
  export SKY_E2E_PORT="$port"
}

# Local clusters' agent daemons outlive the commands that started them: end them by pid, for a
# cleanup after a run that stopped half-way.
stop_local_agents() {
  local pidfile
  for pidfile in "$SKY_HOME"/local/*/agent/agent.pid; do
    [[ -f "$pidfile" ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}
