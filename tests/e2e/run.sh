#!/usr/bin/env bash
# run.sh — browser end-to-end tests of dist/qubes-rescue.html.
#   1. installs what it needs: npm packages (playwright-core, pinned), geckodriver (cargo install,
#      pinned) when missing; checks for Debian's chromium, firefox-esr and WebKitGTK (see below);
#   2. builds the page with ../../build.sh if dist/qubes-rescue.html is missing (and the fixtures
#      with ../make-fixtures.sh if their manifest is missing);
#   3. runs, in one `node --test` run: the Chromium tests (playwright-core), the file browser
#      tests (Chromium, compared with the CLI's `get`), the Firefox ESR test
#      (geckodriver, W3C WebDriver), the WebKitGTK test (WebKitWebDriver driving MiniBrowser under
#      xvfb-run, W3C WebDriver), the page/CLI error-class agreement test (both browsers),
#      and — unless QR_E2E_DETERMINISM=0 — the two-builds
#      determinism test; prints node's test summary and exits non-zero on any failure.
#
# System packages (Debian): chromium firefox-esr webkit2gtk-driver libwebkit2gtk-4.1-0 xvfb nodejs
#   npm, plus cargo (rustup) for geckodriver. When the browsers are missing and this runs as root
#   with apt-get, it installs them.
# Env: CHROMIUM_BIN, FIREFOX_BIN, GECKODRIVER, WEBKIT_DRIVER, MINIBROWSER, QR_PAGE, QR_FIXTURES, QR_E2E_TMP (big downloads:
#   the > 8 GiB sparse fixture needs ~20 GB free there, default $TMPDIR or /tmp),
#   QR_E2E_ONLY="chromium browse firefox webkit agreement recipe people determinism" (subset), QR_CLI (the native CLI), QR_E2E_DETERMINISM=0 (skip that test).
set -euo pipefail
E2E=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E/../.." && pwd)
cd "$E2E"
say() { printf 'e2e: %s\n' "$*" >&2; }
GECKODRIVER_VERSION=0.37.1
t0=$SECONDS

# -- system packages -------------------------------------------------------------------------
need_apt=()
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] || need_apt+=(chromium)
[ -x "${FIREFOX_BIN:-/usr/bin/firefox-esr}" ] || need_apt+=(firefox-esr)
[ -x "${WEBKIT_DRIVER:-/usr/bin/WebKitWebDriver}" ] || need_apt+=(webkit2gtk-driver)
[ -x "${MINIBROWSER:-/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser}" ] || need_apt+=(libwebkit2gtk-4.1-0)
command -v xvfb-run >/dev/null || need_apt+=(xvfb)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${need_apt[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    say "missing: ${need_apt[*]} (Debian: apt-get install ${need_apt[*]})"; exit 1
  fi
fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=10)?0:1)' \
  || { say "node >= 20.10 needed (have $(node --version))"; exit 1; }

# -- npm: playwright-core, axe-core (pinned in package.json / package-lock.json) ---------------
want=$(node -p 'const d = require("./package.json").dependencies; d["playwright-core"] + " " + d["axe-core"]')
have=$(node -p 'const v = (p) => { try { return require("./node_modules/" + p + "/package.json").version } catch { return "" } }; v("playwright-core") + " " + v("axe-core")')
if [ "$want" != "$have" ]; then
  say "npm ci (playwright-core $want)"
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# -- geckodriver (crates.io; Debian has no package) ---------------------------------------------
GD=${GECKODRIVER:-}
[ -n "$GD" ] || GD=$(command -v geckodriver || true)
[ -n "$GD" ] || GD="${CARGO_HOME:-$HOME/.cargo}/bin/geckodriver"
if ! [ -x "$GD" ]; then
  command -v cargo >/dev/null || { say "cargo is needed to install geckodriver"; exit 1; }
  say "cargo install geckodriver $GECKODRIVER_VERSION (once; a few minutes)"
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(mktemp -d)/geckodriver-build} \
    cargo install --locked geckodriver --version "$GECKODRIVER_VERSION" >&2
  GD="${CARGO_HOME:-$HOME/.cargo}/bin/geckodriver"
fi
export GECKODRIVER=$GD

# -- the page and the fixtures ----------------------------------------------------------------
if [ -z "${QR_PAGE:-}" ] && ! [ -f "$ROOT/dist/qubes-rescue.html" ]; then
  say "dist/qubes-rescue.html missing: running build.sh"
  (cd "$ROOT" && ./build.sh >&2)
fi
if [ -z "${QR_FIXTURES:-}${QR_MANIFEST:-}" ] && ! [ -f "$ROOT/tests/fixtures/made/manifest.json" ]; then
  say "fixtures missing: running tests/make-fixtures.sh"
  (cd "$ROOT" && tests/make-fixtures.sh >&2)
fi
say "setup took $((SECONDS - t0)) s; node $(node --version), playwright-core $want, $("${CHROMIUM_BIN:-/usr/bin/chromium}" --version 2>/dev/null | head -n1), $("${FIREFOX_BIN:-/usr/bin/firefox-esr}" --version 2>/dev/null | head -n1), $("$GD" --version 2>/dev/null | head -n1)"

# -- run ----------------------------------------------------------------------------------------
only=" ${QR_E2E_ONLY:-chromium browse firefox webkit agreement recipe people determinism} "
files=()
# The file browser's downloads are compared with what the native CLI's `get` writes; the
# agreement test compares the page's error classes with the CLI's.
if [[ $only == *" browse "* || $only == *" firefox "* || $only == *" webkit "* || $only == *" agreement "* ]] && [ -z "${QR_CLI:-}" ]; then
  (cd "$ROOT" && cargo build --quiet --bin qubes-rescue >&2)
  export QR_CLI=$ROOT/target/debug/qubes-rescue
fi
[[ $only == *" chromium "* ]] && files+=(chromium.test.mjs)
[[ $only == *" browse "* ]] && files+=(browse.test.mjs)
[[ $only == *" firefox "* ]] && files+=(firefox.test.mjs)
[[ $only == *" webkit "* ]] && files+=(webkit.test.mjs)
[[ $only == *" agreement "* ]] && files+=(agreement.test.mjs)
[[ $only == *" recipe "* ]] && files+=(recipe.test.mjs)
[[ $only == *" people "* ]] && files+=(people.test.mjs)
[[ $only == *" determinism "* && ${QR_E2E_DETERMINISM:-1} != 0 ]] && files+=(determinism.test.mjs)
mkdir -p "$E2E/out"
TAP=$E2E/out/e2e.tap
set +e
node --test --test-concurrency=1 --test-timeout=$((90 * 60 * 1000)) \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$TAP" \
  "${files[@]}"
rc=$?
set -e
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$TAP" | tail -1)
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$TAP" | tail -1)
cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$TAP" | tail -1)
skipped=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$TAP" | tail -1)
say "done in $((SECONDS - t0)) s (TAP report: $TAP)"
echo "e2e: ${pass:-0} passed, $(( ${fail:-0} + ${cancelled:-0} )) failed, ${skipped:-0} skipped"
exit $rc
