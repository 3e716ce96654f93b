#!/usr/bin/env bash
# recipe-restore.sh BACKUP PASSPHRASE OUTDIR
#
# Restores EVERYTHING in a Qubes OS v4 backup with the manual "emergency restore" procedure
# (qubes-doc user/how-to-guides/backup-emergency-restore-v4), i.e. only GNU tar, scrypt and the
# compressor — completely independent of the qubes-rescue Rust code:
#   1. tar -i -xf BACKUP                           (concatenated tar archives → ignore zero blocks)
#   2. scrypt dec backup-header.hmac with "backup-header!P", must equal backup-header
#   3. read backup-id / compressed / compression-filter from the (now verified) header
#   4. for every file (every X.000.enc): scrypt dec each chunk X.NNN.enc with "BACKUP_ID!X.NNN!P"
#      into X.NNN (decrypted to a file, so the MAC is verified before the data is used),
#      cat the chunks in `sort -V` order | FILTER -d | tar -xf - --sparse -C OUTDIR
# Result: OUTDIR/qubes.xml, OUTDIR/vmN/private.img, OUTDIR/vmN/firewall.xml, …,
#         OUTDIR/dom0-home/<user>/… (archive names, as the inner tars store them).
# The passphrase goes to scrypt through `--passphrase env:` (same bytes as `echo … | scrypt dec -P`).
# Set RECIPE_SCRYPT_ARGS (e.g. "-f") to pass extra options to `scrypt dec`.
set -euo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 BACKUP PASSPHRASE OUTDIR" >&2
    exit 2
fi
backup=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
pass=$2
mkdir -p "$3"
out=$(cd "$3" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/recipe-restore.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
cd "$work"

# shellcheck disable=SC2206
dec=(scrypt dec ${RECIPE_SCRYPT_ARGS:-} --passphrase env:RECIPE_PASS)

# 1. unpack the outer layer
tar -i -xf "$backup"

# 2. verify the header
RECIPE_PASS="backup-header!$pass" "${dec[@]}" backup-header.hmac backup-header.verified
cmp -s backup-header backup-header.verified || { echo "backup-header does not match backup-header.hmac" >&2; exit 1; }

# 3. header values
hdr() { sed -n "s/^$1=//p" backup-header; }
[[ $(hdr version) == 4 ]] || { echo "not a version 4 backup" >&2; exit 1; }
backup_id=$(hdr backup-id)
compressed=$(hdr compressed)
filter=$(hdr compression-filter)
case ${compressed,,} in
    1|true|yes) decompress=("$filter" -d) ;;
    *) decompress=(cat) ;;
esac

# 4. every file: decrypt chunks, concatenate in version order, decompress, untar
nfiles=0
while IFS= read -r first; do
    base=${first%.000.enc}
    chunks=()
    while IFS= read -r f_enc; do
        f_dec=${f_enc%.enc}
        RECIPE_PASS="$backup_id!$f_dec!$pass" "${dec[@]}" "$f_enc" "$f_dec" \
            || { echo "cannot decrypt $f_enc" >&2; rm -f -- "$f_dec"; exit 1; }
        rm -f -- "$f_enc"
        chunks+=("$f_dec")
    done < <(find . -path "./$base.*.enc" -printf '%P\n' | grep -E "^$(printf '%s' "$base" | sed 's/[.[\*^$]/\\&/g')\.[0-9]{3,}\.enc$" | sort -V)
    cat -- "${chunks[@]}" | "${decompress[@]}" | tar -xf - --sparse -C "$out"
    rm -f -- "${chunks[@]}"
    nfiles=$((nfiles + 1))
done < <(find . -name '*.000.enc' -printf '%P\n' | sort)

echo "recipe-restore: $(basename "$backup"): backup-id $backup_id, $nfiles files restored into $out" >&2
