#!/usr/bin/env bash
# browse-vs-recipe.sh — issue 4: getting ONE file out of a backup, three ways, in the same run:
#   (a) recipe  the manual emergency restore of the whole backup (tests/recipe-restore.sh:
#               tar -i, scrypt dec, gzip -d, tar --sparse), then `debugfs -R dump` of the file
#               from the restored image (no root, no loop mount) and `debugfs -R ls` of a folder
#   (b) cli     target/release/qubes-rescue get BACKUP QUBE FILE, and `ls` of the folder
#   (c) page    dist/qubes-rescue.html in headless Chromium: Open, Browse (restores the qube into
#               the page), list the folder, download the file (tests/e2e/bench-browse.mjs)
# The backup (made once into $BENCH_DIR with the real tools, Qubes' default scrypt parameters,
# 100 MiB chunks, gzip) holds a 2 GiB ext4 private.img (mke2fs -d) with a 200 MiB random file and
# a 5000-entry folder. All three copies of the file are compared by sha256. Prints wall times and
# the ratios page/recipe and cli/recipe; no assertions on time (the machine is shared and noisy).
# Env: BENCH_DIR (default $TMPDIR/qubes-rescue-bench), BENCH_PASS (bench).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/qubes-rescue-bench}
PASS=${BENCH_PASS:-bench}
BACKUP=$BENCH_DIR/browse.bin
FILE=/home/user/big.bin
FOLDER=/home/user/many
say() { printf 'bench: %s\n' "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mkdir -p "$BENCH_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/browse-bench.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

if ! [ -f "$BACKUP" ]; then
  say "making $BACKUP (real tools, default scrypt: a few minutes)"
  export SCRYPT_ARGS=
  # shellcheck source=../tests/qubes-backup.sh
  source "$ROOT/tests/qubes-backup.sh"
  SRC=$WORK/src
  mkdir -p "$SRC/home/user/many" "$SRC/home/user/Documents"
  head -c $((200 << 20)) /dev/urandom > "$SRC$FILE"
  for i in $(seq 0 4999); do echo "entry $i" > "$SRC/home/user/many/entry-$i.txt"; done
  for i in $(seq 1 20); do printf "line %d of document $i\n" $(seq 2000) > "$SRC/home/user/Documents/doc-$i.txt"; done
  IMG=$WORK/private.img
  truncate -s 2G "$IMG"
  mke2fs -q -F -t ext4 -E root_owner=0:0 -d "$SRC" "$IMG"
  e2fsck -fyD "$IMG" >/dev/null || [ $? -lt 4 ]
  SPEC=$WORK/spec
  printf 'vm\t5\tbench\tAppVM\tred\t-\tlvm\n' > "$SPEC"
  printf 'vol\t5\tprivate\t%s\tpax\n' "$IMG" >> "$SPEC"
  "$ROOT/tests/make-fixtures.sh" --helper qubes-xml "$SPEC" > "$WORK/qubes.xml"
  begin_backup "$BACKUP.tmp" "$PASS" "$(date +%Y%m%dT%H%M%S)-$$" gzip 104857600
  add_qubes_xml "$WORK/qubes.xml"
  add_volume_pax vm5/ private.img "$IMG"
  end_backup
  mv "$BACKUP.tmp" "$BACKUP"
  rm -rf "$SRC" "$IMG"
fi
say "backup: $(stat -c %s "$BACKUP") bytes"
[ -f "$ROOT/dist/qubes-rescue.html" ] || (cd "$ROOT" && ./build.sh >&2)
[ -x "$ROOT/target/release/qubes-rescue" ] || (cd "$ROOT" && cargo build --release --bin qubes-rescue >&2)

say "(a) recipe: restore everything, then debugfs"
t=$(now)
"$ROOT/tests/recipe-restore.sh" "$BACKUP" "$PASS" "$WORK/recipe" >/dev/null
debugfs -R "dump $FILE $WORK/recipe.out" "$WORK/recipe/vm5/private.img" 2>/dev/null
t_recipe_file=$(secs "$t" "$(now)")
t=$(now)
debugfs -R "ls $FOLDER" "$WORK/recipe/vm5/private.img" >/dev/null 2>&1
t_recipe_ls=$(secs "$t" "$(now)")
rm -rf "$WORK/recipe"

say "(b) cli: qubes-rescue get / ls"
export QUBES_RESCUE_PASSPHRASE=$PASS
t=$(now)
"$ROOT/target/release/qubes-rescue" get "$BACKUP" bench "$FILE" -o "$WORK/cli.out" >/dev/null
t_cli_file=$(secs "$t" "$(now)")
t=$(now)
"$ROOT/target/release/qubes-rescue" ls "$BACKUP" bench "$FOLDER" >/dev/null
t_cli_ls=$(secs "$t" "$(now)")

say "(c) page: Open, Browse, list, download"
page=$(cd "$ROOT/tests/e2e" && node bench-browse.mjs "$BACKUP" "$PASS" bench "$FILE" "$FOLDER" "$WORK/page.out")
say "page: $page"

a=$(sha256sum < "$WORK/recipe.out" | cut -c1-64); b=$(sha256sum < "$WORK/cli.out" | cut -c1-64); c=$(sha256sum < "$WORK/page.out" | cut -c1-64)
[ "$a" = "$b" ] && [ "$a" = "$c" ] || { say "the three copies of $FILE differ: $a $b $c"; exit 1; }
node -e '
const p = JSON.parse(process.argv[1]);
const [rf, rl, cf, cl] = process.argv.slice(2).map(Number);
const page = (p.openMs + p.browseMs + p.fileMs) / 1000;
console.log(`one 200 MiB file out of a 2 GiB ext4 private.img (same sha256 three ways):`);
console.log(`  recipe (restore all + debugfs dump): ${rf.toFixed(1)} s`);
console.log(`  cli    (qubes-rescue get):           ${cf.toFixed(1)} s   cli/recipe  = ${(cf / rf).toFixed(2)}`);
console.log(`  page   (Open ${(p.openMs/1000).toFixed(1)} s + Browse ${(p.browseMs/1000).toFixed(1)} s + download ${(p.fileMs/1000).toFixed(1)} s): ${page.toFixed(1)} s   page/recipe = ${(page / rf).toFixed(2)}`);
console.log(`listing a ${p.entries}-entry folder: page ${(p.listMs/1000).toFixed(2)} s (image already in the page); cli ls ${cl.toFixed(1)} s (restores first); recipe debugfs ls ${rl.toFixed(2)} s (image already restored)`);
' "$page" "$t_recipe_file" "$t_recipe_ls" "$t_cli_file" "$t_cli_ls"
