#!/usr/bin/env bash
# Builds dist/qubes-rescue.html: one offline page with the wasm core, the JS and the CSS inlined,
# plus dist/qubes-rescue.html.sha256. Two builds of the same commit are byte-identical.
#
#   ./build.sh            # prints where the page is
#
# Needs: rustup + cargo, node (only to assemble the page: no npm packages).
# Installs when missing: the wasm32-unknown-unknown target, wasm-bindgen-cli pinned to Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
TARGET=wasm32-unknown-unknown
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$ROOT/dist
DEMO=$ROOT/tests/fixtures/made/demo.bin

say() { printf '%s\n' "$*" >&2; }

# -- toolchain ---------------------------------------------------------------------------
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  say "build.sh: installing the $TARGET target"
  rustup target add "$TARGET"
fi

WBG_VERSION=$(sed -n 's/^wasm-bindgen *= *"=\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)
[ -n "$WBG_VERSION" ] || { say "build.sh: Cargo.toml must pin wasm-bindgen with \"=x.y.z\""; exit 1; }
WBG=$(command -v wasm-bindgen || true)
[ -n "$WBG" ] || WBG="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen"
if ! { [ -x "$WBG" ] && [ "$("$WBG" --version 2>/dev/null)" = "wasm-bindgen $WBG_VERSION" ]; }; then
  say "build.sh: installing wasm-bindgen-cli $WBG_VERSION (once; takes a few minutes)"
  cargo install --locked wasm-bindgen-cli --version "$WBG_VERSION" \
    || cargo install wasm-bindgen-cli --version "$WBG_VERSION"
  WBG="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-bindgen"
fi
command -v node >/dev/null || { say "build.sh: node is needed to assemble the page"; exit 1; }

# -- wasm ---------------------------------------------------------------------------------
# +simd128: scrypt and sha2 have wasm SIMD backends (2.5x faster KDF, PERF-BASELINE.md).
# The path remaps keep the build's own paths out of the binary, so other checkouts reproduce it.
export RUSTFLAGS="-C target-feature=+simd128 --remap-path-prefix=$ROOT=/qubes-rescue --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
export SOURCE_DATE_EPOCH=0
cargo build --release --lib --target "$TARGET" --target-dir "$TARGET_DIR"

GEN=$TARGET_DIR/page-bindgen
rm -rf "$GEN"
"$WBG" --target no-modules --no-typescript --out-dir "$GEN" "$TARGET_DIR/$TARGET/release/qubes_rescue.wasm"

# -- the page -------------------------------------------------------------------------------
mkdir -p "$OUT"
[ -f "$DEMO" ] || say "build.sh: warning: $DEMO is missing; the page is built without the demo backup"
VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
node - "$ROOT" "$GEN" "$DEMO" "$OUT/qubes-rescue.html" "$VERSION" <<'JS'
const fs = require('fs');
const crypto = require('crypto');
const [root, gen, demo, out, version] = process.argv.slice(2);
const read = (p) => fs.readFileSync(p, 'utf8');
const www = (f) => read(root + '/www/' + f);

const wasm = fs.readFileSync(gen + '/qubes_rescue_bg.wasm');
// Every JS source by placeholder, in the order the page holds them: the workers' sources as text
// (ui.js builds each worker from the ones it uses), then the scripts the page runs (fmt.js and
// bridge.js are both: the page runs them and the workers are built with them).
const js = {
  GLUE_JS: read(gen + '/qubes_rescue.js'),
  COMMON_JS: www('common.js'),
  READS_JS: www('reads.js'),
  SINKS_JS: www('sinks.js'),
  COORDINATOR_JS: www('coordinator.js'),
  CHUNK_JS: www('chunk.js'),
  BROWSE_JS: www('browse.js'),
  FMT_JS: www('fmt.js'),
  BRIDGE_JS: www('bridge.js'),
  UI_RESTORE_JS: www('ui-restore.js'),
  UI_BROWSE_JS: www('ui-browse.js'),
  UI_JS: www('ui.js'),
};
// Inline text must not end its <script>/<style> element early.
for (const [name, text] of Object.entries(js).concat([['style.css', www('style.css')]])) {
  if (/<\/(script|style)/i.test(text) || /<!--/.test(text)) {
    console.error('build.sh: ' + name + ' contains "</script", "</style" or "<!--"; it cannot be inlined');
    process.exit(1);
  }
}
// The footer's SHA-256 covers the code: the wasm, then each JS source in the order above.
const h = crypto.createHash('sha256');
h.update(wasm);
for (const text of Object.values(js)) h.update(text);
const codeSha = h.digest('hex');

const demoB64 = fs.existsSync(demo) ? fs.readFileSync(demo).toString('base64') : '';
const values = {
  STYLE: www('style.css'),
  VERSION: version,
  CODE_SHA256: codeSha,
  WASM_B64: wasm.toString('base64'),
  DEMO_B64: demoB64,
  ...js,
};
let page = www('index.html');
// The page must hold the sources in the order the hash covers them.
const order = [...page.matchAll(/@@([A-Z0-9_]+_JS)@@/g)].map((m) => m[1]);
if (order.join() !== Object.keys(js).join()) {
  console.error('build.sh: index.html holds the JS sources as ' + order.join(', ') + ', not ' + Object.keys(js).join(', '));
  process.exit(1);
}
// One pass, so nothing inserted is ever scanned for placeholders again.
page = page.replace(/@@([A-Z0-9_]+)@@/g, (m, key) => {
  if (!(key in values)) { console.error('build.sh: unknown placeholder ' + m); process.exit(1); }
  return values[key];
});
fs.writeFileSync(out, page);
console.error('build.sh: wasm ' + wasm.length + ' bytes, demo ' + (demoB64 ? Buffer.from(demoB64, 'base64').length + ' bytes' : 'none') +
  ', page ' + Buffer.byteLength(page) + ' bytes; code SHA-256 ' + codeSha);
JS

(cd "$OUT" && sha256sum qubes-rescue.html > qubes-rescue.html.sha256)
say "build.sh: page SHA-256 $(cut -d' ' -f1 "$OUT/qubes-rescue.html.sha256")"
echo "$OUT/qubes-rescue.html"
