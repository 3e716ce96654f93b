#!/usr/bin/env bash
# check-fixtures-v3.sh [MANIFEST [BACKUP-FILE...]]
#
# Restores every format-3 / format-2 backup listed in MANIFEST (default
# tests/fixtures/made-v3/manifest.json, written by tests/make-fixtures-v3.sh) with the MANUAL
# emergency recipes of qubes-doc (user/how-to-guides/backup-emergency-restore-v3 and -v2) — only
# GNU tar, openssl and the decompressor, nothing of qubes-rescue — and verifies the result against
# the manifest.  With BACKUP-FILE arguments only those entries are checked.
#
# Recipe per backup:
#   1. tar -i -xf BACKUP                                   (outer layer: concatenated tar archives)
#   2. every member X (backup-header, qubes.xml.000, vm5/private.img.001, …) must have X.hmac, and
#      `openssl dgst -<ALG> -hmac P < X` must print the same hex as X.hmac (text after '=';
#      R3 wrote "(stdin)= hex", OpenSSL 3 writes "SHA2-512(stdin)= hex"); ALG = the manifest's
#      hmac_algorithm (what the user knows); then the verified header is read
#   3. format 3: for every file X: cat X.000 X.001 … (sort -V)
#                | openssl enc -d -aes-256-cbc -md md5 -pass pass:P   (if encrypted=True)
#                | <compression-filter> -d                             (if compressed=True)
#                | tar -x --sparse
#      format 2: every piece separately: openssl enc -d … -in X.NNN -out X.dec.NNN (encrypted) or
#                gzip -d (compressed) ; then tar -M --new-volume-script=… -x --sparse -f X.dec.000
#                (the new-volume script of the v2 doc: X.dec.000 -> X.dec.001 -> …)
# Checks: backup file size/sha256, outer member list, header text, every HMAC, pieces per file,
# qubes.xml (sha256; backup_content/backup_path of every qube, including the ones not in the
# backup), every expected file (type, size, sha256 or data runs + zeros elsewhere, modes, symlink
# targets) and that nothing unexpected was restored.  Prints "N passed, N failed"; exit 1 on failure.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifest=${1:-$HERE/fixtures/made-v3/manifest.json}
[[ $# -gt 0 ]] && shift
manifest=$(cd "$(dirname "$manifest")" && pwd)/$(basename "$manifest")
only=("$@")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-fixtures-v3.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

# the new-volume script of the v2 emergency-restore doc
cat > "$WORK/new-volume-script" <<'SH'
#!/bin/sh
name=`expr "$TAR_ARCHIVE" : '\(.*\)\..*'`
suffix=`printf %03d $((TAR_VOLUME - 1))`
[ -e "$name.$suffix" ] || exit 1      # added: a missing volume must fail, not make tar ask forever
echo "$name.$suffix" >&"$TAR_FD"
SH
chmod +x "$WORK/new-volume-script"

cat > "$WORK/verify.py" <<'PY'
import hashlib, json, os, re, stat, sys, tarfile
import xml.etree.ElementTree as ET

from fixture_files import check_files, check_nothing_else, sha256_file  # tests/fixture_files.py


def main(manifest_path, name, bin_path, xdir, out, listing, hmac_log):
    m = json.load(open(manifest_path))
    b = next(x for x in m['backups'] if x['file'] == name)
    errors = []
    err = errors.append
    if os.path.getsize(bin_path) != b['size']:
        err('backup file size %d != %d' % (os.path.getsize(bin_path), b['size']))
    elif sha256_file(bin_path) != b['sha256']:
        err('backup file sha256 differs')
    names = [l.rstrip('\n') for l in open(listing)]
    if names != [x['name'] for x in b['members']]:
        err('outer member list differs from the manifest')
    auth_failed = False
    for l in open(hmac_log):
        err(l.rstrip('\n'))
        auth_failed |= 'HMAC' in l
    if auth_failed:                              # the recipe stops before decrypting unverified data
        err('nothing restored: authentication failed')
        for e in errors:
            print('  FAIL %s: %s' % (name, e))
        return False, 0
    hp = os.path.join(xdir, 'backup-header')
    if b['header'] is not None:
        if not os.path.exists(hp) or open(hp).read() != b['header']:
            err('backup-header text differs')
    # pieces per file
    for s in b['streams']:
        pat = re.compile(re.escape(s['base']) + r'\.[0-9]{3,}$')
        n = sum(1 for x in names if pat.match(x))
        if n != s['pieces']:
            err('%s: %d pieces, manifest says %d' % (s['base'], n, s['pieces']))
    # qubes.xml
    qx = os.path.join(out, 'qubes.xml')
    if not os.path.isfile(qx):
        err('qubes.xml not restored')
    elif os.path.getsize(qx) != b['qubes_xml']['size'] or sha256_file(qx) != b['qubes_xml']['sha256']:
        err('qubes.xml differs')
    else:
        root = ET.parse(qx).getroot()
        if root.tag != 'QubesVmCollection':
            err('qubes.xml root is %s' % root.tag)
        byname = {e.get('name'): e for e in root}
        for q in b['qubes']:
            e = byname.get(q['name'])
            if e is None or e.get('backup_content') != 'True' or e.get('backup_path') != q['backup_path'] \
                    or e.tag != q['xml_element'] or e.get('qid') != str(q['qid']):
                err('qubes.xml: %s not listed as in the backup at %s' % (q['name'], q['backup_path']))
        for o in b['not_in_backup']:
            e = byname.get(o['name'])
            if e is None or e.get('backup_content') != 'False' or e.get('backup_path') != o['backup_path']:
                err('qubes.xml: %s should be listed with backup_content False and backup_path %r'
                    % (o['name'], o['backup_path']))
    expected = {'qubes.xml'}
    nfiles = check_files(out, b, err, expected)
    check_nothing_else(out, expected, err)
    for e in errors:
        print('  FAIL %s: %s' % (name, e))
    return not errors, nfiles

if __name__ == '__main__':
    ok, n = main(*sys.argv[1:8])
    print('  %s %s (%d expected entries)' % ('ok  ' if ok else 'FAIL', sys.argv[2], n))
    sys.exit(0 if ok else 1)
PY

mapfile -t entries < <(python3 -c '
import json,sys
for b in json.load(open(sys.argv[1]))["backups"]:
    print(b["file"]); print(b["passphrase"]); print(b["hmac_algorithm"]); print(b["format"])' "$manifest")

hexof() { sed -n 's/^[^=]*=[[:space:]]*\([0-9a-fA-F]*\)[[:space:]]*$/\1/p' | head -1; }

# restore_one BIN PASS ALG FORMAT XDIR OUT HMACLOG — the manual recipe; returns non-zero if a step fails
restore_one() {
    local bin=$1 pass=$2 alg=$3 fmt=$4 x=$5 out=$6 log=$7 f got want enc= compressed= filter= base dp bases
    mkdir -p "$x" "$out"; : > "$log"
    ( cd "$x" && tar -i -xf "$bin" )
    # 2. HMAC of every member (the header first: it is read only once verified)
    while IFS= read -r f; do
        if [[ ! -f $x/$f.hmac ]]; then echo "$f: no $f.hmac" >> "$log"; continue; fi
        got=$(openssl dgst "-$alg" -hmac "$pass" < "$x/$f" | hexof)
        want=$(hexof < "$x/$f.hmac")
        [[ -n $want && ${got,,} == "${want,,}" ]] || echo "$f: HMAC mismatch" >> "$log"
    done < <(cd "$x" && find . -type f ! -name '*.hmac' -printf '%P\n' | sort -V)
    while IFS= read -r f; do
        [[ -f $x/${f%.hmac} ]] || echo "$f: HMAC file without data" >> "$log"
    done < <(cd "$x" && find . -type f -name '*.hmac' -printf '%P\n')
    [[ -s $log ]] && return 0           # never decrypt/untar unauthenticated data
    # header values (v2 without header: encrypted unknown -> manifest; R2-beta3 had none)
    if [[ -f $x/backup-header ]]; then
        enc=$(sed -n 's/^encrypted=//p' "$x/backup-header")
        compressed=$(sed -n 's/^compressed=//p' "$x/backup-header")
        filter=$(sed -n 's/^compression-filter=//p' "$x/backup-header")
    fi
    [[ -n ${filter:-} ]] || filter=gzip
    local dec=(cat) unz=(cat)
    [[ ${enc,,} == true ]] && dec=(openssl enc -d -aes-256-cbc -md md5 -pass "pass:$pass")
    [[ ${compressed,,} == true ]] && unz=("$filter" -d)
    # 3. every backed-up file
    mapfile -t bases < <(cd "$x" && find . -type f -name '*.000' -printf '%P\n' | sed 's/\.000$//' | grep -vx 'backup-header' | sort)
    for base in "${bases[@]}"; do
        mapfile -t pieces < <(cd "$x" && find . -type f ! -name '*.hmac' -printf '%P\n' \
            | grep -E "^$(printf '%s' "$base" | sed 's/[.[\*^$]/\\&/g')\.[0-9]{3,}$" | sort -V)
        if [[ $fmt == 3 ]]; then
            ( cd "$x" && cat -- "${pieces[@]}" ) | "${dec[@]}" 2> /dev/null | "${unz[@]}" | tar -x --sparse -f - -C "$out" \
                || { echo "$base: recipe pipeline failed" >> "$log"; continue; }
        else
            local i=0 p
            for p in "${pieces[@]}"; do
                printf -v dp '%s.dec.%03d' "$base" "$i"
                if [[ ${enc,,} == true ]]; then
                    openssl enc -d -aes-256-cbc -md md5 -pass "pass:$pass" -in "$x/$p" -out "$x/$dp" 2> /dev/null
                elif [[ ${compressed,,} == true ]]; then
                    gzip -dc < "$x/$p" > "$x/$dp"
                else
                    cp -- "$x/$p" "$x/$dp"
                fi || { echo "$p: cannot decode volume" >> "$log"; }
                i=$((i + 1))
            done
            timeout 120 tar -M --new-volume-script="$WORK/new-volume-script" -x --sparse -f "$x/$base.dec.000" -C "$out" < /dev/null \
                || echo "$base: multi-volume tar failed" >> "$log"
        fi
    done
    return 0
}

start=$SECONDS
pass_n=0 fail_n=0 count=0
for ((i = 0; i < ${#entries[@]}; i += 4)); do
    name=${entries[i]} pass=${entries[i+1]} alg=${entries[i+2]} fmt=${entries[i+3]}
    if [[ ${#only[@]} -gt 0 && " ${only[*]} " != *" $name "* ]]; then continue; fi
    bin=$(dirname "$manifest")/$name
    x=$WORK/x-$count out=$WORK/out-$count
    t0=$SECONDS
    count=$((count + 1))
    if [[ ! -f $bin ]]; then echo "  FAIL $name: missing"; fail_n=$((fail_n + 1)); continue; fi
    tar -i -tf "$bin" > "$WORK/listing"
    if ! restore_one "$bin" "$pass" "$alg" "$fmt" "$x" "$out" "$WORK/hmac.log" 2> "$WORK/err"; then
        cat "$WORK/err" >&2
        echo "  FAIL $name: recipe restore failed"; fail_n=$((fail_n + 1)); continue
    fi
    if PYTHONPATH="$HERE" python3 "$WORK/verify.py" "$manifest" "$name" "$bin" "$x" "$out" "$WORK/listing" "$WORK/hmac.log"; then
        pass_n=$((pass_n + 1))
    else
        [[ -s $WORK/err ]] && sed 's/^/       /' "$WORK/err" | head -5
        fail_n=$((fail_n + 1))
    fi
    echo "       (format $fmt, $((SECONDS - t0)) s)"
    rm -rf -- "$x" "$out"
done
echo "check-fixtures-v3: $pass_n passed, $fail_n failed ($((SECONDS - start)) s)"
[[ $fail_n -eq 0 && $count -gt 0 ]]
