# Shared by scripts/*.sh: idempotent installs of what a fresh Debian machine with Rust lacks.

step() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Everything the build, the tests and the desktop app need from Debian.
SYSTEM_PACKAGES=(
  build-essential pkg-config file
  # desktop app (Tauri 2 on WebKitGTK)
  libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libsoup-3.0-dev libxdo-dev
  # real-window tests: X server, WebDriver, keychain
  xvfb webkit2gtk-driver gnome-keyring dbus-x11 libsecret-tools
  # benchmarks and SSH hosts
  hyperfine openssh-server openssh-client rsync iproute2
  # bucket copies on the test nodes (the tool Sky runs on real nodes too)
  rclone
  # kill and ps, which the tests and harnesses call as programs
  procps
  nodejs npm
)

install_system_packages() {
  local wanted=()
  for p in "${SYSTEM_PACKAGES[@]}"; do
    # A machine may ship its own Node.js outside dpkg (Vite needs a newer one than Debian's).
    if [[ "$p" == nodejs || "$p" == npm ]] && command -v node >/dev/null && command -v npm >/dev/null; then
      continue
    fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || wanted+=("$p")
  done
  [ "${#wanted[@]}" -eq 0 ] && return 0
  step "installing system packages: ${wanted[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${wanted[@]}"
}

install_cargo_tools() {
  export PATH="$HOME/.cargo/bin:$PATH"
  command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
  command -v tauri-driver >/dev/null || cargo install tauri-driver --locked
}

# The AWS provider's tests run the real SDK against a local moto server (started by the tests).
# 5.2.5: 5.2.1 named CompleteMultipartUpload's answer wrongly (getmoto/moto#10055), which the SDK refuses.
MOTO_VERSION=5.2.5
XLIB_VERSION=0.33
install_python_tools() {
  if ! python3 -m pip show moto 2>/dev/null | grep -qx "Version: $MOTO_VERSION"; then
    step "installing moto[server]==$MOTO_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  # The e2e closes the app's window as a window manager would (tests/e2e/close_window.py).
  if ! python3 -c 'import Xlib' 2>/dev/null; then
    step "installing python-xlib==$XLIB_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "python-xlib==$XLIB_VERSION"
  fi
  # Point the tests at the script pip just wrote: under pyenv its shim only appears after a rehash,
  # and on PATH there may be another Python's moto.
  MOTO_SERVER="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/moto_server"
  [ -x "$MOTO_SERVER" ] || { echo "moto_server not found at $MOTO_SERVER after installing moto" >&2; return 1; }
  export MOTO_SERVER
}
