#!/usr/bin/env bash
# Runs every test of qubes-rescue, installing what is missing on a Debian machine:
#   1. Rust unit and integration tests (`cargo test`): real backups from Qubes' own test
#      suite and from the real tools (tests/fixtures/), the writer cross-checked against
#      GNU tar / scrypt / the compressors, property round-trips, the damage matrix;
#   2. the committed fixtures against the manual recipe (tests/check-fixtures.sh), then every
#      cargo-fuzz target for 30 s (fuzz/run.sh; QR_SKIP_FUZZ=1 skips it);
#   3. the page: ./build.sh, then browser tests in Chromium and Firefox ESR (tests/e2e/run.sh).
# Usage: tests/run-all.sh            (QR_SKIP_E2E=1 skips step 3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
say() { printf '\n== %s\n' "$*" >&2; }
# Everything is also logged, to add up the test counts of every runner at the end.
LOG=$(mktemp "${TMPDIR:-/tmp}/qr-run-all.XXXXXX")
exec > >(tee "$LOG") 2>&1

# -- system packages (Debian names) ------------------------------------------------------------
need=()
for pair in scrypt:scrypt openssl:openssl sgdisk:gdisk zstd:zstd xz:xz-utils bzip2:bzip2 mke2fs:e2fsprogs \
            python3:python3 node:nodejs npm:npm cc:gcc c++:g++ unzip:unzip 7zz:7zip bsdtar:libarchive-tools sfdisk:fdisk; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ "${QR_SKIP_E2E:-0}" != 1 ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
  [ -x /usr/bin/WebKitWebDriver ] || need+=(webkit2gtk-driver)
  [ -x /usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser ] || need+=(libwebkit2gtk-4.1-0)
  command -v xvfb-run >/dev/null || need+=(xvfb)
fi
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

say "cargo test (unit, integration, real-tool fixtures, damage matrix)"
cargo test


say "fixtures against the manual recipe (scrypt dec | decompress | tar)"
tests/check-fixtures.sh
say "format 3/2 fixtures against the manual recipes (openssl dgst/enc | decompress | tar [-M])"
tests/check-fixtures-v3.sh

if [ "${QR_SKIP_FUZZ:-0}" != 1 ]; then
  say "fuzzing (30 s per target)"
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  fuzz/run.sh 30
fi

if [ "${QR_SKIP_E2E:-0}" = 1 ]; then
  say "the core builds for wasm32 (the page is skipped)"
  rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  cargo build --lib --target wasm32-unknown-unknown
else
  say "the page: build (wasm32 core), then Chromium and Firefox ESR"
  ./build.sh
  say "the core in wasm32 under node (wasm-bindgen-test; the runner comes with build.sh's wasm-bindgen-cli)"
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --no-default-features --target wasm32-unknown-unknown --test wasm_core
  tests/e2e/run.sh
fi
# One closing line for all runners (cargo test, wasm-bindgen-test, node --test via e2e/run.sh).
total=$(grep -hoE '^test result: ok\. [0-9]+ passed' "$LOG" | awk '{s+=$4} END {print s+0}')
e2e=$(grep -hoE '^e2e: [0-9]+ passed' "$LOG" | tail -n1 | awk '{print $2+0}')
echo "run-all: $((total + ${e2e:-0})) passed, 0 failed"
