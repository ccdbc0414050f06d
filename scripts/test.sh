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
install_python_tools

# Tests never sign in with this machine's own cloud logins (the AWS, gcloud and Azure CLI files
# under $HOME; the tests of those logins make homes of their own) and never ask an instance
# metadata address, even when this machine is a cloud VM.
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/nonexistent/sky-tests/aws-config
export AWS_SHARED_CREDENTIALS_FILE=/nonexistent/sky-tests/aws-credentials
export CLOUDSDK_CONFIG=/nonexistent/sky-tests/gcloud
export AZURE_CONFIG_DIR=/nonexistent/sky-tests/azure

# Tests must never touch the real home: CI asserts ~/.sky (SkyPilot's) and Sky's default home
# stay absent.
home_sky_before=$(test -e "$HOME/.sky" && echo yes || echo no)
default_home="${XDG_DATA_HOME:-$HOME/.local/share}/sky"
default_home_before=$(test -e "$default_home" && echo yes || echo no)
# ... nor the user's own OpenSSH config (`ssh CLUSTER` adds an Include there only for the default
# home; tests name their own homes).
ssh_config_before=$(sha256sum "$HOME/.ssh/config" 2>/dev/null || echo absent)

# The desktop app embeds ui/dist at compile time, so the UI is built before any cargo step, and
# every cargo step uses the same features so that one compile serves lint, tests and the e2e run.
FEATURES=(--features sky-desktop/custom-protocol)

step "ui: install, typecheck, unit tests, build"
(cd ui && npm ci --no-audit --no-fund && npm run typecheck && npm test && npm run build)

step "format"
cargo fmt --all --check
# A message string that lost its `\` line continuation keeps the next line's indent inside the
# text ("shuts itself down                  stops"); rustfmt cannot see that, so look for it.
if grep -rnE '"[^"]*[^ "] {6,}[^ "][^"]*"' --include='*.rs' crates src-tauri | grep -vE 'r#"|\\n'; then
  echo "string literals above carry a run of spaces where a line continuation was lost" >&2
  exit 1
fi

# One compile serves both lint and tests: workspace crates are compiled by clippy-driver, which is
# what `cargo clippy` runs but here with code generation, so the cloud SDKs are built once instead
# of checked for clippy and then built again (that alone saves CI about a quarter of its time).
# Cargo fingerprints the wrapper, so every later cargo step must see the same variables.
export RUSTC_WORKSPACE_WRAPPER
RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

step "lint and build: clippy -D warnings on every target of the workspace"
# Also builds the real `sky` and `sky-agent` binaries that the end-to-end tests run.
cargo build --workspace --all-targets --locked "${FEATURES[@]}"

step "unit and integration tests"
cargo nextest run --workspace --locked "${FEATURES[@]}" --no-fail-fast -E 'not binary(fuzz)'

step "fuzzing: a bounded run of every target (proptest, stable Rust)"
# Each target prints how many inputs it tried; SKY_FUZZ_CASES sets the count (longer runs by hand).
SKY_FUZZ_CASES="${SKY_FUZZ_CASES:-20000}" cargo nextest run --workspace --locked "${FEATURES[@]}" \
  --no-fail-fast --success-output final -E 'binary(fuzz)'
cargo test --workspace --doc --locked "${FEATURES[@]}"

if [ "${SKY_TEST_SKIP_GUI:-0}" != 1 ]; then
  step "desktop app in a real window (Xvfb, D-Bus, gnome-keyring, tauri-driver)"
  # Reuse what the steps above built (same commit, same features) instead of rebuilding per package.
  SKY_E2E_CORE_TEST=$(cargo test --workspace --lib --no-run --locked "${FEATURES[@]}" --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "sky_core" and m["profile"]["test"] and m.get("executable"):
        print(m["executable"])')
  SKY_E2E_PREBUILT=1 SKY_E2E_BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/debug" SKY_E2E_CORE_TEST="$SKY_E2E_CORE_TEST" \
    bash tests/e2e/run.sh
fi

step "hermeticity"
if [ "$home_sky_before" = no ] && [ -e "$HOME/.sky" ]; then
  echo "a test wrote to the real ~/.sky" >&2
  exit 1
fi
if [ "$default_home_before" = no ] && [ -e "$default_home" ]; then
  echo "a test wrote to the real default Sky home $default_home" >&2
  exit 1
fi
if [ "$(sha256sum "$HOME/.ssh/config" 2>/dev/null || echo absent)" != "$ssh_config_before" ]; then
  echo "a test changed the real ~/.ssh/config" >&2
  exit 1
fi
echo "all tests passed"
