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

def sha256_file(p):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        while True:
            d = f.read(1 << 22)
            if not d:
                return h.hexdigest()
            h.update(d)

from sparse_extents import extents  # tests/sparse_extents.py

def check_runs(p, ent, err):
    """every run hashes right, everything else in the file is zero"""
    runs = sorted((r['offset'], r['offset'] + r['length'], r['sha256']) for r in ent['runs'])
    with open(p, 'rb') as f:
        for a, b, h in runs:
            f.seek(a); d = f.read(b - a)
            if len(d) != b - a or hashlib.sha256(d).hexdigest() != h:
                return err('%s: data run at %d (+%d) differs' % (ent['archive_name'], a, b - a))
        size = os.fstat(f.fileno()).st_size
        for s, e in extents(f, size):
            pos = s
            for a, b, _ in runs + [(size, size, None)]:
                if b <= pos:
                    continue
                if a >= e:
                    gap = (pos, e)
                else:
                    gap = (pos, min(a, e))
                if gap[1] > gap[0]:
                    f.seek(gap[0]); left = gap[1] - gap[0]; off = gap[0]
                    while left:
                        d = f.read(min(1 << 22, left))
                        if d.count(0) != len(d):
                            return err('%s: non-zero bytes near offset %d outside the data runs'
                                       % (ent['archive_name'], off + next(i for i, c in enumerate(d) if c)))
                        left -= len(d); off += len(d)
                pos = max(pos, b)
                if pos >= e:
                    break

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
    nfiles = 0
    for q in b['qubes']:
        for ent in q['files']:
            p = os.path.join(out, ent['archive_name'])
            expected.add(ent['archive_name'])
            nfiles += 1
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                err('%s: missing' % ent['archive_name']); continue
            t = ent['type']
            if t == 'dir':
                if not stat.S_ISDIR(st.st_mode):
                    err('%s: not a directory' % ent['archive_name'])
            elif t == 'symlink':
                if not stat.S_ISLNK(st.st_mode):
                    err('%s: not a symlink' % ent['archive_name'])
                elif os.readlink(p) != ent['target']:
                    err('%s: symlink target %r != %r' % (ent['archive_name'], os.readlink(p), ent['target']))
            else:
                if not stat.S_ISREG(st.st_mode):
                    err('%s: not a regular file' % ent['archive_name']); continue
                if st.st_size != ent['size']:
                    err('%s: size %d != %d' % (ent['archive_name'], st.st_size, ent['size'])); continue
                if 'runs' in ent:
                    check_runs(p, ent, err)
                if 'sha256' in ent and (ent['size'] <= (1 << 30) or 'runs' not in ent):
                    if sha256_file(p) != ent['sha256']:
                        err('%s: sha256 differs' % ent['archive_name'])
            if 'hardlinks' in ent:
                arch = {x['path']: x['archive_name'] for x in q['files']}
                for other in ent['hardlinks']:
                    try:
                        same = os.lstat(os.path.join(out, arch[other])).st_ino == st.st_ino
                    except (KeyError, FileNotFoundError):
                        same = False
                    if not same:
                        err('%s: not a hard link of %s' % (ent['archive_name'], other))
            if 'mode' in ent and '%04o' % (st.st_mode & 0o7777) != ent['mode']:
                err('%s: mode %04o != %s' % (ent['archive_name'], st.st_mode & 0o7777, ent['mode']))
    # nothing else restored
    for root, dirs, files in os.walk(out):
        for n in dirs + files:
            rel = os.path.relpath(os.path.join(root, n), out)
            if rel == '.header':
                continue
            if rel in expected:
                continue
            if os.path.isdir(os.path.join(root, n)) and not os.path.islink(os.path.join(root, n)) \
                    and any(e.startswith(rel + '/') for e in expected):
                continue        # vmN/ and dom0-home/ parents
            err('unexpected restored entry %s' % rel)
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
