#!/usr/bin/env bash
# kdf-vs-scrypt.sh — the KDF alone, per scrypt parameter set, in one run (issue 10 item 3):
#   scrypt dec    Tarsnap's `scrypt dec` of one chunk (one KDF, plus AES/HMAC of 40 MiB)
#   recipe Open   `scrypt dec` of backup-header.hmac, then of qubes.xml.000.enc (two KDFs in turn)
#   CLI Open      `qubes-rescue list` (the same two KDFs side by side, our scrypt, native)
#   page Open     the page in headless Chromium: the same two KDFs on its chunk workers
#   page chunk    the page's KDF of the volume's one chunk (window.qubesRescue.stats.kdfMs)
# on one-chunk backups made by bench/make-bench-backup.sh (40 MiB volume) with the parameters
# that `scrypt enc` picks for a dom0 (N=2^19 r=8 p=4) and on 8, 16 and 32 GiB+ machines
# (N=2^20, 2^21, 2^22; r=8, p=1). Backups are cached in $BENCH_DIR. Nothing is asserted.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/qubes-rescue-bench}
CLI=$ROOT/target/release/qubes-rescue
PASS=bench
mkdir -p "$BENCH_DIR"
[ -x "$CLI" ] || (cd "$ROOT" && cargo build --release --bin qubes-rescue >&2)
[ -f "$ROOT/dist/qubes-rescue.html" ] || (cd "$ROOT" && ./build.sh >/dev/null)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kdf-vs-scrypt.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

printf '| scrypt parameters | KDF memory | `scrypt dec` (1 KDF) | recipe Open (2 KDFs in turn) | CLI Open | page Open | page chunk KDF |\n|---|---:|---:|---:|---:|---:|---:|\n'
for params in "--logN 19 -r 8 -p 4" "--logN 20 -r 8 -p 1" "--logN 21 -r 8 -p 1" "--logN 22 -r 8 -p 1"; do
  read -r _ logN _ r _ p <<< "$params"
  B=$BENCH_DIR/kdf-$logN-$r-$p.bin
  [ -f "$B" ] || BENCH_SCRYPT_ARGS="$params" BENCH_PASS=$PASS "$ROOT/bench/make-bench-backup.sh" "$B" 40 >&2
  rm -rf "$WORK/x"; mkdir -p "$WORK/x"; (cd "$WORK/x" && tar -i -xf "$B")
  id=$(sed -n 's/^backup-id=//p' "$WORK/x/backup-header")
  chunk=$(cd "$WORK/x" && ls vm*/private.img.000.enc | head -n1)
  t0=$(now); (cd "$WORK/x" && QP="$id!${chunk%.enc}!$PASS" scrypt dec --passphrase env:QP "$chunk" /dev/null); t1=$(now)
  (cd "$WORK/x" && QP="backup-header!$PASS" scrypt dec --passphrase env:QP backup-header.hmac /dev/null \
     && QP="$id!qubes.xml.000!$PASS" scrypt dec --passphrase env:QP qubes.xml.000.enc /dev/null); t2=$(now)
  QUBES_RESCUE_PASSPHRASE=$PASS "$CLI" list "$B" >/dev/null; t3=$(now)
  page=$(cd "$ROOT/tests/e2e" && node bench-page.mjs "$B" "$PASS" bench "$B.manifest.json")
  read -r popen pkdf check <<< "$(node -e 'const p = JSON.parse(process.argv[1]); console.log((p.openMs / 1000).toFixed(2), (p.stats.kdfMs[0] / 1000).toFixed(2), Object.values(p.check || {}).join(","))' "$page")"
  printf '| N=2^%s r=%s p=%s | %s MiB | %s s | %s s | %s s | %s s | %s s |\n' "$logN" "$r" "$p" $(( (128 * r << logN) >> 20 )) \
    "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$(secs "$t2" "$t3")" "$popen" "$pkdf"
  [ "$check" = byte-exact ] || echo "page restore: $check" >&2
done
echo "($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); wall-clock, one run each: indications, not assertions)"
