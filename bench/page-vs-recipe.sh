#!/usr/bin/env bash
# page-vs-recipe.sh [BACKUP]  — issue 3 item 10: the page vs the manual recipe (and the CLI).
#
# On a backup made by bench/make-bench-backup.sh (Qubes' default scrypt parameters, 100 MiB
# chunks, >= 3 chunks; generated into $BENCH_DIR when missing), times:
#   (a) recipe  the manual emergency-restore recipe, natively and serially like the Qubes doc:
#               tar -i -xf BACKUP; scrypt dec backup-header.hmac (verify); scrypt dec every chunk
#               of the volume in order; cat | gzip -d | tar -x --sparse into a temp dir
#   (b) page    dist/qubes-rescue.html in headless Chromium (playwright-core): Open with the
#               passphrase, select the qube, Restore, until status data-state=done; and until
#               every download is written (Blob download path)
#   (c) cli     target/release/qubes-rescue extract, if that binary exists
# and prints wall times, the ratios page/recipe and cli/recipe, and the KDF time per chunk: the
# page's (window.qubesRescue.stats.kdfMs) vs `scrypt dec` on a tiny file with the same logN/r/p.
# No assertions on time: it only reports.  Env: BENCH_DIR (default /tmp/qubes-rescue-bench),
# BENCH_PASS (default bench), BENCH_SIZE_MIB (default 350), BENCH_QUBE (default bench).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
E2E=$ROOT/tests/e2e
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/qubes-rescue-bench}
PASS=${BENCH_PASS:-bench}
QUBE=${BENCH_QUBE:-bench}
SIZE=${BENCH_SIZE_MIB:-350}
BACKUP=${1:-$BENCH_DIR/bench-${SIZE}.bin}
say() { printf 'bench: %s\n' "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

for t in scrypt tar gzip node; do command -v $t >/dev/null || { say "$t is needed"; exit 1; }; done
mkdir -p "$BENCH_DIR"
if ! [ -f "$BACKUP" ]; then
  say "generating $BACKUP with bench/make-bench-backup.sh ($SIZE MiB volume; default scrypt: a few minutes)"
  BENCH_PASS=$PASS "$ROOT/bench/make-bench-backup.sh" "$BACKUP" "$SIZE"
fi
MANIFEST=$BACKUP.manifest.json
[ -f "$ROOT/dist/qubes-rescue.html" ] || (cd "$ROOT" && ./build.sh >/dev/null)
if ! [ -d "$E2E/node_modules/playwright-core" ]; then (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error >&2); fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/page-vs-recipe.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

# subdir of the qube (vmN/) from the outer member names of its private.img
SUB=$(tar -i -tf "$BACKUP" | sed -n 's#^\(vm[0-9]*\)/private\.img\.000\.enc$#\1#p' | head -n1)
[ -n "$SUB" ] || { say "no vmN/private.img in $BACKUP"; exit 1; }
NCHUNKS=$(tar -i -tf "$BACKUP" | grep -c "^$SUB/private\.img\.[0-9]*\.enc$")
say "backup $BACKUP: $(stat -c %s "$BACKUP") bytes, $SUB/private.img in $NCHUNKS chunks; machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- (a) the manual recipe
R=$WORK/recipe; mkdir -p "$R/out"
sync; t_a0=$(now)
(
  cd "$R"
  tar -i -xf "$BACKUP"
  QP="backup-header!$PASS" scrypt dec --passphrase env:QP backup-header.hmac backup-header.verified
  cmp -s backup-header backup-header.verified
) || { say "recipe: header step failed"; exit 1; }
ID=$(sed -n 's/^backup-id=//p' "$R/backup-header")
: > "$WORK/recipe-chunks.txt"
for f_enc in $(cd "$R" && ls "$SUB"/private.img.*.enc | sort -V); do
  f_dec=${f_enc%.enc}
  c0=$(now)
  (cd "$R" && QP="$ID!$f_dec!$PASS" scrypt dec --passphrase env:QP "$f_enc" "$f_dec")
  echo "$f_dec $(secs "$c0" "$(now)")" >> "$WORK/recipe-chunks.txt"
done
(cd "$R" && cat $(ls "$SUB"/private.img.[0-9]* | grep -v '\.enc$' | sort -V) | gzip -d | tar -x --sparse -C "$R/out")
t_a1=$(now)
RECIPE=$(secs "$t_a0" "$t_a1")
RECIPE_SHA=$(sha256sum < "$R/out/$SUB/private.img" | cut -d' ' -f1)
say "recipe: $RECIPE s"
# scrypt parameters of the chunks (bytes 7..15 of the scrypt header: logN, r, p)
read -r -a B <<< "$(od -An -tu1 -v -N16 "$R/$SUB/private.img.000.enc" | tr -s ' \n' '  ')"
rm -rf "$R"

# scrypt's KDF alone: `scrypt dec` of a tiny file encrypted with the same parameters as the chunks
LOGN=${B[7]}; RR=$(( (B[8] << 24) | (B[9] << 16) | (B[10] << 8) | B[11] )); PP=$(( (B[12] << 24) | (B[13] << 16) | (B[14] << 8) | B[15] ))
printf 'x' > "$WORK/tiny"
QP=k scrypt enc --passphrase env:QP --logN "$LOGN" -r "$RR" -p "$PP" "$WORK/tiny" "$WORK/tiny.enc"
k0=$(now); QP=k scrypt dec -f --passphrase env:QP "$WORK/tiny.enc" /dev/null; SCRYPT_KDF=$(secs "$k0" "$(now)")

# ---------------------------------------------------------------- (b) the page in Chromium
say "page: starting headless Chromium"
PAGE_JSON=$(cd "$E2E" && node bench-page.mjs "$BACKUP" "$PASS" "$QUBE" "$MANIFEST")
echo "$PAGE_JSON" > "$BENCH_DIR/last-page-run.json"

# ---------------------------------------------------------------- (c) the CLI
CLI=""; CLI_SHA=""
if [ -x "$ROOT/target/release/qubes-rescue" ]; then
  say "cli: target/release/qubes-rescue extract"
  sync; c0=$(now)
  QUBES_RESCUE_PASSPHRASE=$PASS "$ROOT/target/release/qubes-rescue" extract "$BACKUP" "$QUBE" -o "$WORK/cli" >/dev/null 2>"$WORK/cli.log" \
    || { say "cli failed: $(tail -3 "$WORK/cli.log")"; }
  CLI=$(secs "$c0" "$(now)")
  img=$(find "$WORK/cli" -name '*private.img' -type f | head -n1)
  [ -n "$img" ] && CLI_SHA=$(sha256sum < "$img" | cut -d' ' -f1)
  rm -rf "$WORK/cli"
fi

# ---------------------------------------------------------------- report
node - "$PAGE_JSON" "$RECIPE" "$CLI" "$SCRYPT_KDF" "$WORK/recipe-chunks.txt" "$RECIPE_SHA" "$CLI_SHA" "$LOGN" "$RR" "$PP" "$NCHUNKS" "$QUBE" <<'JS'
const fs = require('fs');
const [pageJson, recipe, cli, scryptKdf, chunksFile, recipeSha, cliSha, logN, r, p, nChunks, qube] = process.argv.slice(2);
const page = JSON.parse(pageJson);
const s = (ms) => (ms / 1000).toFixed(2);
const chunkTimes = fs.readFileSync(chunksFile, 'utf8').trim().split('\n').map((l) => l.split(' '));
const pageTotal = (page.openMs + page.restoreMs) / 1000;
const pageWithDl = (page.openMs + page.downloadsMs) / 1000;
const out = [];
out.push(`backup: ${nChunks} chunks of the volume, scrypt logN=${logN} r=${r} p=${p} (KDF memory ${(128 * r * 2 ** logN / 2 ** 20).toFixed(0)} MiB)`);
out.push('');
out.push(`(a) manual recipe (serial, native):      ${(+recipe).toFixed(2)} s`);
out.push(`    scrypt dec per chunk (KDF+AES+HMAC):  ${chunkTimes.map((c) => c[1]).join(', ')} s`);
out.push(`(b) page, Chromium headless:            ${pageTotal.toFixed(2)} s  (Open ${s(page.openMs)} s + Restore→done ${s(page.restoreMs)} s; ` +
  `downloads written at ${pageWithDl.toFixed(2)} s; page boot ${s(page.bootMs)} s not counted)`);
out.push(`    final status: ${page.final.state}${page.final.error ? ' / ' + page.final.error : ''}; ` +
  `downloads: ${Object.keys(page.files).join(', ') || 'none'}${page.check ? '; vs manifest: ' + JSON.stringify(page.check) : ''}`);
if (cli) out.push(`(c) qubes-rescue extract (CLI):         ${(+cli).toFixed(2)} s`);
out.push('');
out.push(`ratio page/recipe: ${(pageTotal / recipe).toFixed(2)}   (with downloads written: ${(pageWithDl / recipe).toFixed(2)})`);
if (cli) out.push(`ratio cli/recipe:  ${(cli / recipe).toFixed(2)}`);
const recipeImgSha = recipeSha;
const pageImg = page.files[`${qube}-private.img`];
out.push(`same private.img: page ${pageImg ? (pageImg.sha256 === recipeImgSha ? 'yes' : 'NO') : 'n/a'}` + (cli ? `, cli ${cliSha === recipeImgSha ? 'yes' : 'NO'}` : ''));
out.push('');
const st = page.stats;
if (st && st.kdfMs && st.kdfMs.length) {
  const k = st.kdfMs;
  const avg = k.reduce((a, b) => a + b, 0) / k.length;
  out.push(`KDF per chunk: page ${k.map((x) => (x / 1000).toFixed(2)).join(', ')} s (mean ${(avg / 1000).toFixed(2)} s, ` +
    `${st.workers || '?'} workers, hardwareConcurrency ${page.hardwareConcurrency}, WebCrypto ${st.webCrypto})`);
  if (st.cryptoMs && st.cryptoMs.length) out.push(`               page AES+HMAC per chunk: ${st.cryptoMs.map((x) => (x / 1000).toFixed(2)).join(', ')} s`);
  out.push(`               scrypt (Tarsnap CLI) KDF alone, same parameters: ${(+scryptKdf).toFixed(2)} s  ` +
    `→ page/scrypt ${(avg / 1000 / scryptKdf).toFixed(2)}`);
} else {
  out.push(`KDF per chunk: the page exposes no timings (window.qubesRescue.stats); scrypt KDF alone: ${(+scryptKdf).toFixed(2)} s`);
}
out.push('(wall times on a shared machine: read them as indications, not measurements; no assertions)');
console.log(out.join('\n'));
JS
