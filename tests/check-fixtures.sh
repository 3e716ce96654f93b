#!/usr/bin/env bash
# check-fixtures.sh [MANIFEST [BACKUP-FILE...]]
#
# Restores every backup listed in MANIFEST (default tests/fixtures/made/manifest.json) with the
# manual emergency recipe (tests/recipe-restore.sh: tar -i, scrypt dec, cat in sort -V order,
# decompress, tar -x --sparse) — independent of the Rust code — and verifies the result against
# the manifest: outer file size/sha256 and member list, backup-header text, scrypt parameters,
# qubes.xml, every expected file (size, sha256 or per-run sha256 + zeros elsewhere, modes,
# symlink targets) and that nothing unexpected was restored.
# With BACKUP-FILE arguments only those manifest entries are checked.
# Works for any manifest of the same schema (bench/make-bench-backup.sh writes one).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifest=${1:-$HERE/fixtures/made/manifest.json}
[[ $# -gt 0 ]] && shift
manifest=$(cd "$(dirname "$manifest")" && pwd)/$(basename "$manifest")
only=("$@")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-fixtures.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

cat > "$WORK/verify.py" <<'PY'
import errno, hashlib, json, os, stat, struct, sys, tarfile

from fixture_files import check_files, check_nothing_else, sha256_file  # tests/fixture_files.py


def main(manifest_path, name, bin_path, out, listing):
    m = json.load(open(manifest_path))
    b = next(x for x in m['backups'] if x['file'] == name)
    errors = []
    err = lambda s: errors.append(s)
    if os.path.getsize(bin_path) != b['size']:
        err('backup file size %d != %d' % (os.path.getsize(bin_path), b['size']))
    elif sha256_file(bin_path) != b['sha256']:
        err('backup file sha256 differs')
    if os.path.getsize(bin_path) % 10240:
        err('backup file is not a multiple of 10240 bytes')
    # outer member list (from `tar -i -tvf`, GNU tar's view)
    names = [l.rstrip('\n') for l in open(listing, encoding='utf-8')]
    if names != [x['name'] for x in b['members']]:
        err('outer member list differs from the manifest')
    hdr = open(os.path.join(out, '.header'), encoding='ascii').read()
    if hdr != b['header']:
        err('backup-header text differs')
    with tarfile.open(bin_path, 'r:', ignore_zeros=True) as t:
        for mem in t:
            if mem.name.endswith('.enc'):
                h = t.extractfile(mem).read(16)
                got = {'logN': h[7], 'r': struct.unpack('>I', h[8:12])[0], 'p': struct.unpack('>I', h[12:16])[0]}
                if b.get('scrypt') and got != b['scrypt']:
                    err('scrypt parameters %s != %s in %s' % (got, b['scrypt'], mem.name))
                break
    # qubes.xml
    qx = os.path.join(out, 'qubes.xml')
    if not os.path.isfile(qx):
        err('qubes.xml not restored')
    elif os.path.getsize(qx) != b['qubes_xml']['size'] or sha256_file(qx) != b['qubes_xml']['sha256']:
        err('qubes.xml differs')
    expected = {'qubes.xml'}
    nfiles = check_files(out, b, err, expected)
    check_nothing_else(out, expected, err, ignore={'.header'})
    for e in errors:
        print('  FAIL %s: %s' % (name, e))
    return not errors, nfiles

if __name__ == '__main__':
    ok, n = main(*sys.argv[1:6])
    print('  %s %s (%d expected entries)' % ('ok  ' if ok else 'FAIL', sys.argv[2], n))
    sys.exit(0 if ok else 1)
PY

mapfile -t entries < <(python3 -c '
import json,sys
for b in json.load(open(sys.argv[1]))["backups"]:
    print(b["file"]); print(b["passphrase"].replace("\n","\\n"))' "$manifest")

start=$SECONDS
fail=0 count=0
for ((i = 0; i < ${#entries[@]}; i += 2)); do
    name=${entries[i]} pass=${entries[i+1]}
    if [[ ${#only[@]} -gt 0 && " ${only[*]} " != *" $name "* ]]; then continue; fi
    bin=$(dirname "$manifest")/$name
    out=$WORK/out-$count
    t0=$SECONDS
    tar -i -tf "$bin" > "$WORK/listing"
    if ! "$HERE/recipe-restore.sh" "$bin" "$pass" "$out" 2> "$WORK/log"; then
        cat "$WORK/log" >&2
        echo "  FAIL $name: recipe restore failed" ; fail=$((fail + 1)); continue
    fi
    # the header the recipe verified
    tar -i -xOf "$bin" backup-header > "$out/.header"
    if PYTHONPATH="$HERE" python3 "$WORK/verify.py" "$manifest" "$name" "$bin" "$out" "$WORK/listing"; then :; else fail=$((fail + 1)); fi
    echo "       ($((SECONDS - t0)) s)"
    rm -rf -- "$out"
    count=$((count + 1))
done
echo "check-fixtures: $count backups checked, $fail failed, $((SECONDS - start)) s"
[[ $fail -eq 0 && $count -gt 0 ]]
