#!/usr/bin/env bash
# make-bench-backup.sh OUT [SIZE_MIB]
#
# A realistic benchmark backup, made like `qvm-backup` does by default: scrypt with its DEFAULT
# parameters (no --logN/-r/-p: scrypt picks ~5 s of KDF per chunk, logN ≈ 18–20), 100 MiB chunks,
# gzip, one AppVM whose private.img (SIZE_MIB, default 350) goes through Qubes' tarwriter (PAX
# sparse 1.0, the LVM-pool path).  The volume is mostly incompressible (SIZE_MIB − 20 MiB of random
# data, the rest holes), so the gzip stream spans ≥ 3 chunks at the default size.
# Also writes OUT's manifest (same schema as tests/fixtures/made/manifest.json) as
# "<OUT>.manifest.json", so that `tests/check-fixtures.sh <OUT>.manifest.json` verifies it with
# the manual recipe.  Passphrase: "bench" (or $BENCH_PASS).  Takes a few minutes.
# Not committed: generate it when benchmarking.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 OUT [SIZE_MIB]" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$(dirname "$1")"
OUT=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SIZE_MIB=${2:-350}
(( SIZE_MIB >= 40 )) || { echo "SIZE_MIB must be >= 40" >&2; exit 2; }
PASS=${BENCH_PASS:-bench}
ID=$(date +%Y%m%dT%H%M%S)-$$                 # Qubes: datetime.now().strftime('%Y%m%dT%H%M%S-') + pid
export SCRYPT_ARGS=${BENCH_SCRYPT_ARGS:-}        # scrypt's defaults, exactly like Qubes (BENCH_SCRYPT_ARGS="--logN 19 -r 8 -p 4": a dom0-like p=4)
CHUNK=104857600

# shellcheck source=../tests/qubes-backup.sh
source "$ROOT/tests/qubes-backup.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-backup.XXXXXX")
trap 'qb__cleanup; rm -rf -- "$WORK"' EXIT
helper() { "$ROOT/tests/make-fixtures.sh" --helper "$@"; }
start=$SECONDS

# volume: SIZE_MIB apparent; 1 MiB of a text-like header, then random data, holes at the end
IMG=$WORK/private.img
truncate -s "${SIZE_MIB}M" "$IMG"
python3 -c 'import sys; sys.stdout.write(("qubes-rescue benchmark volume, compressible part\n" * 30000)[:1048576])' \
    | dd of="$IMG" conv=notrunc status=none
head -c $(( (SIZE_MIB - 20) * 1048576 )) /dev/urandom | dd of="$IMG" bs=1M seek=4 conv=notrunc status=none iflag=fullblock
echo "volume ready ($((SECONDS - start)) s)" >&2

SPEC=$WORK/spec
printf 'other\t2\tdebian-12-xfce\tTemplateVM\tblack\t-\tlvm\n' > "$SPEC"
printf 'vm\t5\tbench\tAppVM\tred\tdebian-12-xfce\tlvm\n' >> "$SPEC"
printf 'vol\t5\tprivate\t%s\tpax\n' "$IMG" >> "$SPEC"
helper qubes-xml "$SPEC" > "$WORK/qubes.xml"

export QB_LOG=$WORK/chunks.log
: > "$QB_LOG"
begin_backup "$OUT" "$PASS" "$ID" gzip "$CHUNK"
add_qubes_xml "$WORK/qubes.xml"
add_volume_pax vm5/ private.img "$IMG"
end_backup
echo "backup written ($((SECONDS - start)) s)" >&2

python3 -c 'import json,sys
a=sys.argv
print(json.dumps({"description":"benchmark: %s MiB PAX-sparse private.img, mostly random; default scrypt parameters; 100 MiB chunks" % a[1],
  "covers":["benchmark","default-scrypt","100MiB-chunks"],"passphrase":a[2],"backup_id":a[3],
  "compressed":True,"compression":"gzip","chunk_size":int(a[4]),
  "stream_log":[dict(zip(("base","chunks","stream_bytes"),(l.split()[0],int(l.split()[1]),int(l.split()[2])))) for l in open(a[5])]}))' \
    "$SIZE_MIB" "$PASS" "$ID" "$CHUNK" "$QB_LOG" > "$WORK/meta.json"
helper entry "$SPEC" "$OUT" "$WORK/meta.json" "$WORK/qubes.xml" "$WORK/cache.json" "$WORK/part.json"
helper combine "$OUT.manifest.json" /nonexistent "$WORK/part.json"
chunks=$(awk '$1 == "vm5/private.img" { print $2 }' "$QB_LOG")
echo "$OUT: $(stat -c %s "$OUT") bytes, private.img in $chunks chunks; manifest $OUT.manifest.json ($((SECONDS - start)) s)" >&2
