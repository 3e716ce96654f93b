#!/usr/bin/env bash
# page-vs-recipe.sh [BACKUP]  — issue 3 item 10: the page vs the manual recipe (and the CLI).
#
# On a backup made by bench/make-bench-backup.sh (Qubes' default scrypt parameters, 100 MiB
# chunks, >= 3 chunks; generated into $BENCH_DIR when missing), times:
#   (a) recipe  the manual emergency-restore recipe, natively and serially like the Qubes doc:
#               tar -i -xf BACKUP; scrypt dec backup-header.hmac (verify); scrypt dec qubes.xml
#               (which vmN/ is the qube); scrypt dec every chunk of the volume in order;
#               cat | gzip -d | tar -x --sparse into a temp dir
#   (b) page    dist/qubes-rescue.html in headless Chromium (playwright-core, tests/e2e): Open
#               with the passphrase, select the qube, Restore, until status data-state=done; and
#               until the download is written (Blob download path). Page start-up is not counted.
#   (c) cli     target/release/qubes-rescue extract BACKUP QUBE, if that binary exists
# and prints wall times, the ratios page/recipe and cli/recipe, and the KDF time per chunk: the
# page's (window.qubesRescue.stats.kdfMs) vs `scrypt dec` of a tiny file with the same logN/r/p.
# Outputs are checked against each other and the backup's manifest (sha256).
# No assertions on time: it only reports. The machine is shared and noisy: BENCH_RUNS=N repeats
# everything N times (interleaved) and reports the minimum, plus every run.
# Env: BENCH_DIR (default $TMPDIR/qubes-rescue-bench), BENCH_PASS (bench), BENCH_SIZE_MIB (350),
#      BENCH_QUBE (bench), BENCH_RUNS (1).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
E2E=$ROOT/tests/e2e
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/qubes-rescue-bench}
PASS=${BENCH_PASS:-bench}
QUBE=${BENCH_QUBE:-bench}
SIZE=${BENCH_SIZE_MIB:-350}
RUNS=${BENCH_RUNS:-1}
BACKUP=${1:-$BENCH_DIR/bench-${SIZE}.bin}
say() { printf 'bench: %s\n' "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# CPU seconds (user+sys) used so far by every finished child of this shell, from bash's `times`
# (run in this shell, not a subshell; Chromium's processes count once node has reaped them)
# → sets CPU; call it directly (not in $(...), which would be a subshell with its own children)
cpu_children() {
  times > "$WORK/times"
  CPU=$(tail -n1 "$WORK/times" | awk '{ t = 0; for (i = 1; i <= NF; i++) { x = $i; m = x; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", x); sub(/s$/, "", x); t += m * 60 + x } printf "%.2f", t }')
}

for t in scrypt tar gzip node od; do command -v $t >/dev/null || { say "$t is needed"; exit 1; }; done
mkdir -p "$BENCH_DIR"
if ! [ -f "$BACKUP" ]; then
  say "generating $BACKUP with bench/make-bench-backup.sh ($SIZE MiB volume; default scrypt: a few minutes)"
  BENCH_PASS=$PASS "$ROOT/bench/make-bench-backup.sh" "$BACKUP" "$SIZE"
fi
BACKUP=$(cd "$(dirname "$BACKUP")" && pwd)/$(basename "$BACKUP")
MANIFEST=$BACKUP.manifest.json
[ -f "$ROOT/dist/qubes-rescue.html" ] || (cd "$ROOT" && ./build.sh >/dev/null)
[ -d "$E2E/node_modules/playwright-core" ] || (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error >&2)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/page-vs-recipe.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

# the qube's subdir (vmN/) from the outer member names of its private.img
SUB=$(tar -i -tf "$BACKUP" | sed -n 's#^\(vm[0-9]*\)/private\.img\.000\.enc$#\1#p' | head -n1)
[ -n "$SUB" ] || { say "no vmN/private.img in $BACKUP"; exit 1; }
NCHUNKS=$(tar -i -tf "$BACKUP" | grep -c "^$SUB/private\.img\.[0-9]*\.enc$")
say "backup $BACKUP: $(stat -c %s "$BACKUP") bytes, $SUB/private.img in $NCHUNKS chunks; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- (a) the manual recipe
# appends "total_s" to $WORK/recipe.txt and "run chunk s" lines to $WORK/recipe-chunks.txt
run_recipe() {
  local run=$1 R=$WORK/recipe t0 c0 f_enc f_dec id filter cpu0
  rm -rf "$R"; mkdir -p "$R/out"
  sync; cpu_children; cpu0=$CPU; t0=$(now)
  (
    cd "$R"
    tar -i -xf "$BACKUP"
    QP="backup-header!$PASS" scrypt dec --passphrase env:QP backup-header.hmac backup-header.verified
    cmp -s backup-header backup-header.verified
  ) || { say "recipe: header step failed"; return 1; }
  id=$(sed -n 's/^backup-id=//p' "$R/backup-header")
  filter=$(sed -n 's/^compression-filter=//p' "$R/backup-header"); filter=${filter:-gzip}
  # the doc's next step: qubes.xml tells which vmN/ holds which qube (the page's Open does it too)
  (cd "$R" && QP="$id!qubes.xml.000!$PASS" scrypt dec --passphrase env:QP qubes.xml.000.enc qubes.xml.000 \
     && "$filter" -dc qubes.xml.000 | tar -x -C "$R/out" && grep -q '<qubes' "$R/out/qubes.xml") \
     || { say "recipe: qubes.xml step failed"; return 1; }
  for f_enc in $(cd "$R" && ls "$SUB"/private.img.*.enc | sort -V); do
    f_dec=${f_enc%.enc}
    c0=$(now)
    (cd "$R" && QP="$id!$f_dec!$PASS" scrypt dec --passphrase env:QP "$f_enc" "$f_dec")
    echo "$run $f_dec $(secs "$c0" "$(now)")" >> "$WORK/recipe-chunks.txt"
  done
  (cd "$R" && cat $(ls "$SUB"/private.img.[0-9]* | grep -v '\.enc$' | sort -V) | "$filter" -d | tar -x --sparse -C "$R/out")
  secs "$t0" "$(now)" >> "$WORK/recipe.txt"; echo >> "$WORK/recipe.txt"
  cpu_children; secs "$cpu0" "$CPU" >> "$WORK/recipe-cpu.txt"; echo >> "$WORK/recipe-cpu.txt"
  sha256sum < "$R/out/$SUB/private.img" | cut -d' ' -f1 > "$WORK/recipe.sha"
  [ -f "$WORK/params" ] || od -An -tu1 -v -N16 "$R/$SUB/private.img.000.enc" | tr -s ' \n' '  ' > "$WORK/params"
  rm -rf "$R"
  say "run $run: recipe $(tail -n1 "$WORK/recipe.txt") s"
}

# ---------------------------------------------------------------- (b) the page in Chromium
run_page() {
  local run=$1
  (cd "$E2E" && node bench-page.mjs "$BACKUP" "$PASS" "$QUBE" "$MANIFEST") > "$WORK/page-$run.json"
  cp "$WORK/page-$run.json" "$BENCH_DIR/last-page-run.json"
  say "run $run: page $(node -e 'const p=require(process.argv[1]); console.log(((p.openMs+p.restoreMs)/1000).toFixed(2), "s,", p.final.state)' "$WORK/page-$run.json")"
}

# ---------------------------------------------------------------- (c) the CLI
CLI_BIN=$ROOT/target/release/qubes-rescue
run_cli() {
  local run=$1 c0 img cpu0
  [ -x "$CLI_BIN" ] || return 0
  rm -rf "$WORK/cli"
  sync; cpu_children; cpu0=$CPU; c0=$(now)
  QUBES_RESCUE_PASSPHRASE=$PASS "$CLI_BIN" extract "$BACKUP" "$QUBE" -o "$WORK/cli" >/dev/null 2>"$WORK/cli.log" \
    || say "cli failed: $(tail -3 "$WORK/cli.log")"
  secs "$c0" "$(now)" >> "$WORK/cli.txt"; echo >> "$WORK/cli.txt"
  cpu_children; secs "$cpu0" "$CPU" >> "$WORK/cli-cpu.txt"; echo >> "$WORK/cli-cpu.txt"
  img=$(find "$WORK/cli" -name '*private.img' -type f | head -n1)
  if [ -n "$img" ]; then sha256sum < "$img" | cut -d' ' -f1 > "$WORK/cli.sha"; fi
  rm -rf "$WORK/cli"
  say "run $run: cli $(tail -n1 "$WORK/cli.txt") s"
}

for run in $(seq 1 "$RUNS"); do
  run_recipe "$run"
  run_page "$run"
  run_cli "$run"
done

# scrypt's KDF alone: `scrypt dec` of a tiny file encrypted with the chunks' logN/r/p
read -r -a B < "$WORK/params" || true  # no trailing newline
LOGN=${B[7]}; RR=$(( (B[8] << 24) | (B[9] << 16) | (B[10] << 8) | B[11] )); PP=$(( (B[12] << 24) | (B[13] << 16) | (B[14] << 8) | B[15] ))
printf 'x' > "$WORK/tiny"
QP=k scrypt enc --passphrase env:QP --logN "$LOGN" -r "$RR" -p "$PP" "$WORK/tiny" "$WORK/tiny.enc"
: > "$WORK/kdf.txt"
for _ in 1 2; do k0=$(now); QP=k scrypt dec -f --passphrase env:QP "$WORK/tiny.enc" /dev/null; secs "$k0" "$(now)" >> "$WORK/kdf.txt"; echo >> "$WORK/kdf.txt"; done

# ---------------------------------------------------------------- report
node - "$WORK" "$RUNS" "$LOGN" "$RR" "$PP" "$NCHUNKS" "$QUBE" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'JS'
const fs = require('fs');
const [work, runs, logN, r, p, nChunks, qube, load] = process.argv.slice(2);
const read = (f) => (fs.existsSync(`${work}/${f}`) ? fs.readFileSync(`${work}/${f}`, 'utf8') : '');
const nums = (f) => read(f).split('\n').filter(Boolean).map(Number);
const min = (a) => Math.min(...a);
const f2 = (x) => x.toFixed(2);
const recipe = nums('recipe.txt'), cli = nums('cli.txt'), kdf = nums('kdf.txt');
const recipeCpu = nums('recipe-cpu.txt'), cliCpu = nums('cli-cpu.txt');
const pages = [...Array(+runs).keys()].map((i) => JSON.parse(read(`page-${i + 1}.json`)));
const pageT = pages.map((pg) => (pg.openMs + pg.restoreMs) / 1000);
const pageDl = pages.map((pg) => (pg.openMs + pg.downloadsMs) / 1000);
const chunkLines = read('recipe-chunks.txt').trim().split('\n').map((l) => l.split(' '));
const recipeSha = read('recipe.sha').trim(), cliSha = read('cli.sha').trim();
const o = [];
o.push(`backup: volume in ${nChunks} chunks, scrypt logN=${logN} r=${r} p=${p} (KDF memory ${(128 * r * 2 ** logN / 2 ** 20).toFixed(0)} MiB); ${runs} run(s); load at end ${load}`);
o.push('');
o.push(`(a) manual recipe (serial, native):  ${f2(min(recipe))} s   runs: ${recipe.map(f2).join(', ')}`);
o.push(`    scrypt dec per chunk (KDF+AES+HMAC+write): ${chunkLines.map((c) => c[2]).join(', ')} s`);
const best = pages[pageT.indexOf(min(pageT))];
o.push(`(b) page, headless Chromium:        ${f2(min(pageT))} s   runs: ${pageT.map(f2).join(', ')}   ` +
  `(best: Open ${f2(best.openMs / 1000)} s + Restore→done ${f2(best.restoreMs / 1000)} s; download written at ${f2(min(pageDl))} s)`);
for (const [i, pg] of pages.entries()) {
  o.push(`    run ${i + 1}: status ${pg.final.state}${pg.final.error ? '/' + pg.final.error : ''}; ` +
    `downloads ${Object.keys(pg.files).join(', ') || 'none'}${pg.check ? '; vs manifest ' + JSON.stringify(pg.check) : ''}`);
}
if (cli.length) o.push(`(c) qubes-rescue extract (CLI):     ${f2(min(cli))} s   runs: ${cli.map(f2).join(', ')}`);
else o.push('(c) qubes-rescue extract (CLI):     not run (no target/release/qubes-rescue; cargo build --release)');
o.push('');
o.push(`ratio page/recipe: ${f2(min(pageT) / min(recipe))}   (download written: ${f2(min(pageDl) / min(recipe))})`);
if (cli.length) o.push(`ratio cli/recipe:  ${f2(min(cli) / min(recipe))}`);
const pageCpu = pages.map((pg) => pg.rendererCpuS).filter((x) => typeof x === 'number');
o.push(`CPU seconds, min over runs: recipe ${f2(min(recipeCpu))} (user+sys of its processes), ` +
  `page ${pageCpu.length ? f2(min(pageCpu)) : 'n/a'} (renderer ProcessTime, Open→done, via CDP; the browser process writing the download is not counted)` +
  `${cliCpu.length ? `, cli ${f2(min(cliCpu))}` : ''} — steadier than wall time on a busy machine`);
const pImg = best.files[`${qube}-private.img`];
o.push(`same private.img as the recipe: page ${pImg ? (pImg.sha256 === recipeSha ? 'yes' : 'NO') : 'n/a'}` +
  (cli.length ? `, cli ${cliSha ? (cliSha === recipeSha ? 'yes' : 'NO') : 'n/a'}` : ''));
o.push('');
const allKdf = pages.flatMap((pg) => (pg.stats && pg.stats.kdfMs) || []);
if (allKdf.length) {
  const st = best.stats;
  o.push(`KDF per chunk, page: ${st.kdfMs.map((x) => f2(x / 1000)).join(', ')} s (best run); min over all runs ${f2(min(allKdf) / 1000)} s ` +
    `[${st.workers || '?'} workers in parallel, hardwareConcurrency ${best.hardwareConcurrency}, WebCrypto AES/HMAC ${st.webCrypto}]`);
  if (st.cryptoMs && st.cryptoMs.length) o.push(`    page AES+HMAC per chunk: ${st.cryptoMs.map((x) => f2(x / 1000)).join(', ')} s`);
  o.push(`KDF alone, scrypt dec (Tarsnap CLI), same parameters: ${kdf.map(f2).join(', ')} s`);
  o.push(`ratio page KDF / scrypt KDF (min/min): ${f2(min(allKdf) / 1000 / min(kdf))}` +
    ((st.workers || 1) > 1 ? `  (the page runs ${st.workers} KDFs at once: on a busy ${require('os').cpus().length}-core machine each gets less than a core)` : ''));
} else {
  o.push(`KDF per chunk: the page exposes no timings (window.qubesRescue.stats); scrypt KDF alone: ${kdf.map(f2).join(', ')} s`);
}
o.push('(wall-clock times on a shared 2-core machine: indications, not measurements; nothing is asserted)');
console.log(o.join('\n'));
JS
