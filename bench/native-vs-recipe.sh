#!/usr/bin/env bash
# native-vs-recipe.sh [BACKUP]
#
# Times, on the same backup and in the same run, the manual recipe (tests/recipe-restore.sh:
# `scrypt dec` per chunk, then decompress | `tar -x --sparse`, serial as in the Qubes
# emergency doc) and `qubes-rescue extract`, checks both produced the same image, and prints
# the ratio. Then prints per-stage native throughput (`cargo bench --bench stages`) at the
# backup's own scrypt parameters. The default backup is made by bench/make-bench-backup.sh
# (Qubes' default scrypt parameters, 100 MiB chunks, ≥ 3 chunks). No assertion on time.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BACKUP=${1:-$ROOT/target/bench/bench.bin}
PASS=${BENCH_PASS:-bench}
[ -f "$BACKUP" ] || bench/make-bench-backup.sh "$BACKUP"
cargo build --release --quiet
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qr-bench.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

timed() { # label, command...: prints wall and CPU seconds, returns wall in $WALL
  local label=$1; shift
  local t0 c0 t1
  t0=$(date +%s.%N)
  /usr/bin/env time -f "%U %S" -o "$WORK/cpu" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  t1=$(date +%s.%N)
  WALL=$(echo "$t1 - $t0" | bc)
  read -r u s < <(tail -n1 "$WORK/cpu")
  printf '%-34s wall %7.2f s   cpu %7.2f s\n' "$label" "$WALL" "$(echo "$u + $s" | bc)"
}

sync
echo "backup: $BACKUP ($(du -h --apparent-size "$BACKUP" | cut -f1)), $(tar -i -tf "$BACKUP" | grep -c '\.enc$') chunks"
timed "manual recipe (scrypt dec | gzip -d | tar)" tests/recipe-restore.sh "$BACKUP" "$PASS" "$WORK/recipe"
RECIPE=$WALL
timed "qubes-rescue extract" env QUBES_RESCUE_PASSPHRASE="$PASS" target/release/qubes-rescue extract "$BACKUP" -o "$WORK/cli"
CLI=$WALL
for img in "$WORK"/recipe/vm*/*.img; do
  vm=$(basename "$(dirname "$img")")
  q=$(ls "$WORK/cli" | head -n1)
  cmp "$img" "$WORK/cli/$q/$(basename "$img")" && echo "same bytes: $vm/$(basename "$img")"
done
printf 'ratio qubes-rescue / recipe: %.2f\n' "$(echo "$CLI / $RECIPE" | bc -l)"
LOGN=$(python3 -c "import sys,subprocess;d=subprocess.run(['tar','-i','-xOf',sys.argv[1],'qubes.xml.000.enc'],capture_output=True).stdout;print(d[7])" "$BACKUP")
echo "per-stage native throughput at logN=$LOGN:"
BENCH_LOGN=$LOGN cargo bench --quiet --bench stages 2>/dev/null
