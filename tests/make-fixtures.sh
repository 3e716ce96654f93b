#!/usr/bin/env bash
# make-fixtures.sh — (re)generate tests/fixtures/made/*.bin and tests/fixtures/made/manifest.json:
# Qubes OS v4 backups made with the REAL tools (GNU tar, gzip/bzip2/xz/lzma/zstd, scrypt, Python
# tarfile = Qubes' tarwriter) through tests/qubes-backup.sh, with fast scrypt parameters
# (SCRYPT_ARGS, default "--logN 10 -r 8 -p 1") and small chunk sizes.  Also copies the shared
# Qubes test-suite fixtures into tests/fixtures/.  Needs: scrypt >= 1.3, GNU tar, gzip, bzip2,
# xz (+lzma), zstd, mke2fs (e2fsprogs >= 1.43 for -d), e2fsck, sgdisk, python3.
#
# Usage: tests/make-fixtures.sh            (re-runnable; everything is rebuilt)
#        FIXTURES="demo.bin xz.bin" tests/make-fixtures.sh   (rebuild only these; manifest entries
#                                            of the others are kept)
#        tests/make-fixtures.sh --helper CMD ARGS…   (run the embedded Python helper only; used by
#                                            bench/make-bench-backup.sh: qubes-xml, entry, combine, …)
#
# ── manifest.json schema (version 1) ─────────────────────────────────────────────────────────
# {
#   "schema": 1,
#   "generator": "tests/make-fixtures.sh", "tools": {"tar": "...", "scrypt": "...", ...},
#   "backups": [ {
#     "file": "gzip-pax.bin",              # relative to the manifest's directory
#     "size": 1234, "sha256": "...",       # of the .bin file
#     "description": "...", "covers": ["pax-sparse", "ext4", ...],
#     "passphrase": "...",                 # UTF-8 string, used verbatim
#     "backup_id": "20240315T101500-4242",
#     "compressed": true, "compression": "gzip",   # compression = header compression-filter
#                                          #  (also "gzip" when compressed=false, like Qubes)
#     "chunk_size": 65536,                 # plaintext bytes per chunk used by the writer
#     "scrypt": {"logN": 10, "r": 8, "p": 1},      # as found in the .enc headers (first chunk)
#     "header": "version=4\n...",          # exact backup-header text
#     "qubes_xml": {"size": n, "sha256": "...", "chunks": 1},   # the inner qubes.xml file
#     "members": [ {"name": "backup-header", "size": 118}, {"name": "qubes.xml.000.enc", ...}, ...],
#                                          # every outer member, in archive order (size = .enc size;
#                                          #  a 128-byte .enc is an empty chunk)
#     "qubes": [ {                         # qubes whose data is in the backup, in backup order
#        "name": "work", "class": "AppVM", "qid": 5, "label": "red", "template": "debian-12-xfce" | null,
#        "backup_path": "vm5/",            # dom0: "dom0-home/user"
#        "user": "user",                   # dom0 only
#        "files": [ {                      # every file a restore must produce for this qube
#           "path": "private.img",         # restored name; dom0 home: "home/user/..." ("home/user" = the dir)
#           "archive_name": "vm5/private.img",     # name inside the inner tar (recipe output path)
#           "role": "volume" | "firewall" | "notes" | "empty" | "home",
#           "type": "file" | "dir" | "symlink",
#           "encoding": "pax-sparse-1.0" | "gnu-old-sparse" | "gnu",    # files only: inner tar flavour
#           "chunks": 3,                   # outer chunks of this backed-up file (not for home entries)
#           "size": 67108864,              # file: apparent size in bytes
#           "sha256": "...",               # file: of the full (apparent) content; OMITTED for
#                                          #  images > 1 GiB (use runs: hashing GiBs of zeros is slow)
#           "data_bytes": 123, "runs": [ {"offset": 0, "length": 4096, "sha256": "..."}, ...],
#                                          # volumes: maximal runs of non-zero 512-byte blocks
#                                          #  (= the tarwriter sparse map without the final (size,0));
#                                          #  every byte outside the runs is zero.  For huge images
#                                          #  check runs + zeros instead of hashing everything.
#           "mode": "0644",                # home entries: permission bits
#           "hardlinks": ["home/user/.bashrc", "home/user/.bashrc-hardlink"],   # files that are one
#                                          #  inode (GNU tar stores all but one as '1' members)
#           "target": "dom0-home/user-notes.txt",  # symlink: target AS STORED (see below)
#           "target_original": "user-notes.txt",   # symlink: target in the source tree, if different
#           "fs": {"type": "ext4"|"gpt+ext4", "files": [...]}   # informative: what the image holds
#        } ]
#     } ],
#     "not_in_backup": ["debian-12-xfce", ...]   # domains listed in qubes.xml without data
#   } ]
# }
# Symlink note: Qubes' `tar --xform=s:^user:dom0-home/\0:` also rewrites symlink TARGETS that start
# with the user name (a relative target "user-notes.txt" is stored as "dom0-home/user-notes.txt");
# "target" is what the backup really contains and what `tar -x` restores.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIX=$HERE/fixtures
MADE=$FIX/made
SHARED=${SHARED_FIXTURES:-/work/shared/fixtures}
export SCRYPT_ARGS=${SCRYPT_ARGS---logN 10 -r 8 -p 1}
# shellcheck source=qubes-backup.sh
source "$HERE/qubes-backup.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/make-fixtures.XXXXXX")
cleanup() { qb__cleanup; rm -rf -- "$WORK"; }
trap cleanup EXIT
SRC=$WORK/src
PARTS=$WORK/parts
mkdir -p "$SRC" "$PARTS"
export QB_LOG=$WORK/chunks.log
start=$SECONDS

want() { [[ -z ${FIXTURES:-} ]] || [[ " $FIXTURES " == *" $1 "* ]]; }

# ───────────────────────────── python helper ─────────────────────────────
HELPER=$WORK/helper.py
cat > "$HELPER" <<'PY'
import errno, hashlib, io, json, os, re, struct, sys, tarfile, zlib

BLK = 512
ZERO = bytes(BLK)

from sparse_extents import extents  # tests/sparse_extents.py

def runs_of(path):
    """maximal runs of non-zero 512-byte blocks (the tarwriter map) with sha256 per run"""
    with open(path, 'rb') as f:
        size = os.fstat(f.fileno()).st_size
        runs = []
        for s, e in extents(f, size):
            s -= s % BLK
            e = min(size, -(-e // BLK) * BLK)
            f.seek(s); off = s
            while off < e:
                buf = f.read(min(1 << 22, e - off))
                for i in range(0, len(buf), BLK):
                    b = buf[i:i + BLK]
                    if b != ZERO[:len(b)] or len(b) < BLK:
                        if runs and runs[-1][1] == off + i:
                            runs[-1][1] = off + i + len(b)
                        else:
                            runs.append([off + i, off + i + len(b)])
                off += len(buf)
        out = []
        for a, b in runs:
            f.seek(a)
            h = hashlib.sha256()
            left = b - a
            while left:
                d = f.read(min(1 << 22, left)); h.update(d); left -= len(d)
            out.append({'offset': a, 'length': b - a, 'sha256': h.hexdigest()})
        return size, out

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            d = f.read(1 << 24)
            if not d:
                break
            h.update(d)
    return h.hexdigest()

CACHE = {}
FULL_HASH_MAX = 1 << 30        # bigger images: no whole-file sha256 (hashing GiBs of holes is slow)
def cache_load(p):
    global CACHE
    if os.path.exists(p):
        CACHE = json.load(open(p))
def cache_save(p):
    json.dump(CACHE, open(p, 'w'))

def image_info(path):
    st = os.stat(path)
    key = '%s:%d:%d' % (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in CACHE:
        size, runs = runs_of(path)
        CACHE[key] = {'size': size, 'data_bytes': sum(r['length'] for r in runs), 'runs': runs}
        if size <= FULL_HASH_MAX:
            CACHE[key]['sha256'] = sha256_file(path)
    return CACHE[key]

def disk_usage(path):                     # qubes.storage.file.get_disk_usage
    st = os.lstat(path)
    total = st.st_blocks * 512
    if os.path.isdir(path) and not os.path.islink(path):
        for n in os.listdir(path):
            total += disk_usage(os.path.join(path, n))
    return total

def read_spec(path):
    rows = []
    for line in open(path, encoding='utf-8'):
        line = line.rstrip('\n')
        if line:
            rows.append(line.split('\t'))
    return rows

LABELS = ['red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black']
COLORS = ['0xcc0000', '0xf57900', '0xedd400', '0x73d216', '0x555753', '0x3465a4', '0x75507b', '0x000000']

def esc(s):
    return s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace('"', '&quot;')

def qubes_xml(spec):
    """R4.2-style qubes.xml (core-admin Qubes.__xml__), as saved by backup_do"""
    vms = {}; order = []; home = None
    for r in spec:
        if r[0] in ('vm', 'other'):
            qid = int(r[1])
            vms[qid] = {'qid': qid, 'name': r[2], 'class': r[3], 'label': r[4],
                        'template': None if r[5] == '-' else r[5], 'pool': r[6],
                        'included': r[0] == 'vm', 'vols': {}, 'files': []}
            order.append(qid)
        elif r[0] == 'vol':
            vms[int(r[1])]['vols'][r[2]] = r[3]
        elif r[0] in ('file', 'empty'):
            vms[int(r[1])]['files'].append(r[3] if r[0] == 'file' else None)
        elif r[0] == 'home':
            home = (r[1], r[2])
    L = []
    w = L.append
    w("<?xml version='1.0' encoding='utf-8'?>")
    w('<qubes>')
    w('  <labels>')
    for i, (n, c) in enumerate(zip(LABELS, COLORS), 1):
        w('    <label color="%s" id="label-%d">%s</label>' % (c, i, n))
    w('  </labels>')
    w('  <pools>')
    w('    <pool dir_path="/var/lib/qubes/vm-kernels" driver="linux-kernel" name="linux-kernel"/>')
    w('    <pool dir_path="/var/lib/qubes" driver="file-reflink" name="varlibqubes" revisions_to_keep="1"/>')
    w('    <pool driver="lvm_thin" name="vm-pool" revisions_to_keep="2" thin_pool="vm-pool" volume_group="qubes_dom0"/>')
    w('  </pools>')
    w('  <properties>')
    tpls = [v['name'] for v in vms.values() if v['class'] == 'TemplateVM']
    if tpls:
        w('    <property name="default_template">%s</property>' % esc(tpls[0]))
    w('    <property name="default_kernel">6.6.48-1.qubes.fc37</property>')
    w('    <property name="default_pool">vm-pool</property>')
    w('  </properties>')
    w('  <domains>')
    # dom0
    lbl = lambda name: 'label-%d' % (LABELS.index(name) + 1)
    w('    <domain id="domain-0" class="AdminVM">')
    w('      <properties>')
    w('        <property name="label">label-8</property>')
    w('      </properties>')
    w('      <features>')
    if home:
        w('        <feature name="backup-content">1</feature>')
        w('        <feature name="backup-path">dom0-home/%s</feature>' % esc(home[0]))
        w('        <feature name="backup-size">%d</feature>' % disk_usage(home[1]))
    else:
        w('        <feature name="backup-content"></feature>')
    w('      </features>')
    for dc in ('pci', 'block', 'usb'):
        w('      <devices class="%s"/>' % dc)
    w('      <tags/>')
    w('    </domain>')
    for qid in sorted(order):
        v = vms[qid]
        w('    <domain id="domain-%d" class="%s">' % (qid, v['class']))
        w('      <properties>')
        w('        <property name="label">%s</property>' % lbl(v['label']))
        w('        <property name="name">%s</property>' % esc(v['name']))
        w('        <property name="qid">%d</property>' % qid)
        if v['template']:
            w('        <property name="template">%s</property>' % esc(v['template']))
        w('        <property name="uuid">%s</property>' % ('%08x-0000-4000-8000-%012x' % (0x0b5eb0c5, qid)))
        if v['class'] == 'StandaloneVM':
            w('        <property name="virt_mode">hvm</property>')
        w('      </properties>')
        w('      <features>')
        if v['class'] in ('TemplateVM', 'StandaloneVM'):
            w('        <feature name="os">Linux</feature>')
        if v['included']:
            size = sum(os.stat(p).st_blocks * 512 for p in v['vols'].values())
            size += sum(disk_usage(p) for p in v['files'] if p)
            w('        <feature name="backup-content">1</feature>')
            w('        <feature name="backup-path">vm%d/</feature>' % qid)
            w('        <feature name="backup-size">%d</feature>' % size)
        else:
            w('        <feature name="backup-content"></feature>')
        w('      </features>')
        for dc in ('pci', 'block', 'usb'):
            w('      <devices class="%s"/>' % dc)
        w('      <tags>')
        w('        <tag name="created-by-dom0"/>')
        w('      </tags>')
        w('      <volume-config>')
        lvm = v['pool'] == 'lvm'
        pool = 'vm-pool' if lvm else 'varlibqubes'
        kind = {'TemplateVM': 'vm-templates', 'StandaloneVM': 'appvms', 'AppVM': 'appvms',
                'DispVM': 'appvms'}[v['class']]
        def vid(vol):
            return ('qubes_dom0/vm-%s-%s' % (v['name'], vol)) if lvm else ('%s/%s/%s' % (kind, v['name'], vol))
        def vsize(vol, default):
            p = v['vols'].get(vol)
            return os.stat(p).st_size if p else default
        w('        <volume name="kernel" pool="linux-kernel" revisions_to_keep="0" vid="6.6.48-1.qubes.fc37"/>')
        if v['class'] in ('TemplateVM', 'StandaloneVM'):
            w('        <volume name="root" pool="%s" revisions_to_keep="%d" rw="True" save_on_stop="True" size="%d" vid="%s"/>'
              % (pool, 2 if lvm else 1, vsize('root', 21474836480), vid('root')))
        else:
            t = v['template'] or 'debian-12-xfce'
            src = ('qubes_dom0/vm-%s-root' % t) if lvm else ('vm-templates/%s/root' % t)
            w('        <volume name="root" pool="%s" revisions_to_keep="0" size="%d" snap_on_start="True" source="%s" vid="%s"/>'
              % (pool, 21474836480, src, vid('root')))
        w('        <volume name="volatile" pool="%s" revisions_to_keep="0" rw="True" size="12884901888" vid="%s"/>'
          % (pool, vid('volatile')))
        if v['class'] == 'DispVM':
            w('        <volume name="private" pool="%s" revisions_to_keep="0" rw="True" size="2147483648" snap_on_start="True" source="%s" vid="%s"/>'
              % (pool, ('qubes_dom0/vm-%s-dvm-private' % (v['template'] or 'debian-12-xfce')), vid('private')))
        else:
            w('        <volume name="private" pool="%s" revisions_to_keep="%d" rw="True" save_on_stop="True" size="%d" vid="%s"/>'
              % (pool, 2 if lvm else 1, vsize('private', 2147483648), vid('private')))
        w('      </volume-config>')
        w('    </domain>')
    w('  </domains>')
    w('</qubes>')
    return '\n'.join(L) + '\n'

def home_entries(user, d):
    ents = []
    def walk(p, rel):
        st = os.lstat(p)
        path = 'home/%s%s' % (user, ('/' + rel) if rel else '')
        arch = 'dom0-home/%s%s' % (user, ('/' + rel) if rel else '')
        e = {'path': path, 'archive_name': arch, 'role': 'home', 'mode': '%04o' % (st.st_mode & 0o7777)}
        if os.path.islink(p):
            t = os.readlink(p)
            stored = re.sub('^' + re.escape(user), 'dom0-home/' + user, t, count=1) \
                if t.startswith(user) else t
            e.update(type='symlink', target=stored)
            if stored != t:
                e['target_original'] = t
            e.pop('mode')
        elif os.path.isdir(p):
            e['type'] = 'dir'
            ents.append(e)
            for n in sorted(os.listdir(p)):
                walk(os.path.join(p, n), (rel + '/' + n) if rel else n)
            return
        else:
            e.update(type='file', size=st.st_size, sha256=sha256_file(p))
            if st.st_nlink > 1:
                e['hardlinks'] = st.st_nlink
                inodes.setdefault(st.st_ino, []).append(e)
        ents.append(e)
    inodes = {}
    walk(d, '')
    for group in inodes.values():                # all names of one inode (links inside the home)
        for e in group:
            e['hardlinks'] = sorted(x['path'] for x in group)
    return ents

def outer_members(path):
    out = []
    with tarfile.open(path, 'r:', ignore_zeros=True) as t:
        for m in t:
            out.append({'name': m.name, 'size': m.size})
    return out

def scrypt_params(path, member):
    with tarfile.open(path, 'r:', ignore_zeros=True) as t:
        for m in t:
            if m.name == member:
                b = t.extractfile(m).read(16)
                return {'logN': b[7], 'r': struct.unpack('>I', b[8:12])[0], 'p': struct.unpack('>I', b[12:16])[0]}

def header_text(path):
    with tarfile.open(path, 'r:', ignore_zeros=True) as t:
        for m in t:
            if m.name == 'backup-header':
                return t.extractfile(m).read().decode('ascii')

def manifest_entry(spec_path, bin_path, meta_path, xml_path):
    spec = read_spec(spec_path)
    meta = json.load(open(meta_path))
    members = outer_members(bin_path)
    def chunks(base):
        pat = re.compile(re.escape(base) + r'\.[0-9]{3,}\.enc$')
        return sum(1 for m in members if pat.match(m['name']))
    qubes = []; byqid = {}; others = []; home = None
    for r in spec:
        if r[0] == 'vm':
            q = {'name': r[2], 'class': r[3], 'qid': int(r[1]), 'label': r[4],
                 'template': None if r[5] == '-' else r[5], 'backup_path': 'vm%s/' % r[1], 'files': []}
            qubes.append(q); byqid[int(r[1])] = q
        elif r[0] == 'other':
            others.append(r[2])
        elif r[0] == 'vol':
            q = byqid[int(r[1])]; img = r[3]
            name = r[2] + '.img'; arch = q['backup_path'] + name
            info = image_info(img)
            f = {'path': name, 'archive_name': arch, 'role': 'volume', 'type': 'file',
                 'encoding': {'pax': 'pax-sparse-1.0', 'gnu': 'gnu-old-sparse'}[r[4]],
                 'chunks': chunks(arch), 'size': info['size']}
            if 'sha256' in info:
                f['sha256'] = info['sha256']
            f.update(data_bytes=info['data_bytes'], runs=info['runs'])
            if len(r) > 5 and r[5]:
                f['fs'] = json.loads(r[5])
            q['files'].append(f)
        elif r[0] == 'file':
            q = byqid[int(r[1])]; arch = q['backup_path'] + r[2]
            role = {'firewall.xml': 'firewall', 'notes.txt': 'notes'}.get(r[2], 'other')
            q['files'].append({'path': r[2], 'archive_name': arch, 'role': role, 'type': 'file',
                               'encoding': 'gnu', 'chunks': chunks(arch),
                               'size': os.path.getsize(r[3]), 'sha256': sha256_file(r[3])})
        elif r[0] == 'empty':
            q = byqid[int(r[1])]; arch = q['backup_path'] + 'empty'
            q['files'].append({'path': 'empty', 'archive_name': arch, 'role': 'empty', 'type': 'file',
                               'encoding': 'gnu', 'chunks': chunks(arch), 'size': 0,
                               'sha256': hashlib.sha256(b'').hexdigest()})
        elif r[0] == 'home':
            home = (r[1], r[2])
    if home:
        user, d = home
        ents = home_entries(user, d)
        qubes.append({'name': 'dom0', 'class': 'AdminVM', 'qid': 0, 'label': 'black', 'template': None,
                      'backup_path': 'dom0-home/' + user, 'user': user,
                      'chunks': chunks('dom0-home/' + user), 'files': ents})
    xml = open(xml_path, 'rb').read()
    e = {'file': os.path.basename(bin_path), 'size': os.path.getsize(bin_path), 'sha256': sha256_file(bin_path)}
    e.update(meta)
    e.update({'scrypt': scrypt_params(bin_path, 'qubes.xml.000.enc'),
              'header': header_text(bin_path),
              'qubes_xml': {'size': len(xml), 'sha256': hashlib.sha256(xml).hexdigest(),
                            'chunks': chunks('qubes.xml')},
              'members': members, 'qubes': qubes, 'not_in_backup': others})
    return e

def png(path, w=96, h=64, seed=1):
    """a small 'photo-like' RGB PNG (sky gradient, sun, hills, a little noise)"""
    import random
    rnd = random.Random(seed)
    rows = []
    for y in range(h):
        row = bytearray([0])
        for x in range(w):
            hill = h * 0.62 + 6 * __import__('math').sin(x / 9.0) + 3 * __import__('math').sin(x / 3.7)
            if (x - 70) ** 2 + (y - 16) ** 2 < 70:
                c = (255, 214, 90)
            elif y > hill:
                c = (40 + y, 120 + (x % 7) * 3, 40)
            else:
                c = (90 + y, 150 + y, 235)
            n = rnd.randint(-6, 6)
            row += bytes(max(0, min(255, v + n)) for v in c)
        rows.append(bytes(row))
    raw = b''.join(rows)
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) \
        + chunk(b'tEXt', b'Comment\x00qubes-rescue demo photo') \
        + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
    open(path, 'wb').write(data)

if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'qubes-xml':
        sys.stdout.write(qubes_xml(read_spec(sys.argv[2])))
    elif cmd == 'entry':
        cache_load(sys.argv[6])
        e = manifest_entry(*sys.argv[2:6])
        cache_save(sys.argv[6])
        json.dump(e, open(sys.argv[7], 'w'), ensure_ascii=False, indent=1)
    elif cmd == 'combine':
        out, old, parts = sys.argv[2], sys.argv[3], sys.argv[4:]
        new = {}
        for p in parts:
            e = json.load(open(p)); new[e['file']] = e
        backups = []
        if os.path.exists(old):
            for e in json.load(open(old)).get('backups', []):
                if e['file'] not in new and os.path.exists(os.path.join(os.path.dirname(out), e['file'])):
                    backups.append(e)
        backups += new.values()
        order = os.environ.get('ORDER', '').split()
        backups.sort(key=lambda e: order.index(e['file']) if e['file'] in order else 999)
        tools = json.loads(os.environ.get('TOOLS', '{}'))
        m = {'schema': 1, 'generator': 'tests/make-fixtures.sh', 'tools': tools, 'backups': backups}
        txt = json.dumps(m, ensure_ascii=False, indent=1)
        # flat objects (members, runs, home entries) on one line each
        txt = re.sub(r'\{\n\s+([^{}\[\]]*?)\n\s*\}',
                     lambda mo: '{' + ' '.join(l.strip() for l in mo.group(1).split('\n')) + '}', txt)
        txt = re.sub(r'\[\n\s+([^{}\[\]]*?)\n\s*\]',
                     lambda mo: '[' + ' '.join(l.strip() for l in mo.group(1).split('\n')) + ']', txt)
        with open(out, 'w') as f:
            f.write(txt + '\n')
    elif cmd == 'png':
        png(sys.argv[2], seed=int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    elif cmd == 'runs':                      # {size, runs} of a file, as the manifest gives them
        size, runs = runs_of(sys.argv[2])   # (SEEK_DATA: a 20 GiB sparse file in milliseconds)
        json.dump({'size': size, 'runs': runs}, sys.stdout)
    elif cmd == 'random':                    # deterministic pseudo-random bytes: random N SEED
        import random
        r = random.Random(int(sys.argv[3]))
        sys.stdout.buffer.write(r.randbytes(int(sys.argv[2])))
    else:
        sys.exit('unknown command ' + cmd)
PY
helper() { PYTHONPATH="$HERE" python3 "$HELPER" "$@"; }
if [[ ${1:-} == --helper ]]; then shift; helper "$@"; exit; fi
mkdir -p "$MADE"

# ───────────────────────────── source material ─────────────────────────────
export E2FSPROGS_FAKE_TIME=1718000000      # reproducible ext4 timestamps
# mk_ext4 IMAGE SIZE SRCDIR LABEL UUID
mk_ext4() {
    rm -f -- "$1"; truncate -s "$2" "$1"
    mke2fs -q -F -t ext4 -L "$4" -U "$5" -E nodiscard,hash_seed="$5" -d "$3" "$1"
    e2fsck -fn "$1" > /dev/null 2>&1
}
# mk_gpt_disk IMAGE SIZE ROOTSRC UUID: GPT, p1 = BIOS boot (1 MiB, filled like a grub core.img),
# p2 = Linux filesystem with ext4 written at the partition offset (mke2fs -E offset=)
mk_gpt_disk() {
    local img=$1 size=$2 rootsrc=$3 uuid=$4 first last off blocks
    rm -f -- "$img"; truncate -s "$size" "$img"
    sgdisk -o -U 5a1d0c5e-0000-4000-8000-00000000d15c \
        -n 1:2048:4095 -t 1:ef02 -c 1:"BIOS boot partition" -u 1:5a1d0c5e-0000-4000-8000-000000000001 \
        -n 2:4096:0 -t 2:8300 -c 2:"Root filesystem" -u 2:5a1d0c5e-0000-4000-8000-000000000002 "$img" > /dev/null
    helper random 6144 7 | dd of="$img" bs=512 seek=2048 conv=notrunc status=none
    first=$(sgdisk -i 2 "$img" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
    last=$(sgdisk -i 2 "$img" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p')
    off=$((first * 512)); blocks=$(( (last - first + 1) * 512 / 4096 ))
    mke2fs -q -F -t ext4 -b 4096 -L root -U "$uuid" -E offset=$off,nodiscard,hash_seed="$uuid" -d "$rootsrc" "$img" "$blocks"
    sgdisk -v "$img" | grep -q 'No problems found' || { echo "GPT damaged in $img" >&2; return 1; }
    dd if="$img" of="$WORK/p2.img" bs=512 skip="$first" count=$((last - first + 1)) status=none
    e2fsck -fn "$WORK/p2.img" > /dev/null 2>&1
    rm -f -- "$WORK/p2.img"
}
# mk_synth IMAGE SIZE "OFFSET:LEN:SEED ..." — sparse image with pseudo-random data runs
mk_synth() {
    local img=$1 size=$2 spec o l s
    rm -f -- "$img"; truncate -s "$size" "$img"
    for spec in $3; do
        IFS=: read -r o l s <<< "$spec"
        helper random "$l" "$s" | dd of="$img" bs=1M seek="$o" oflag=seek_bytes conv=notrunc status=none
    done
}
fslist() {  # JSON description of an image built from SRCDIR: fslist TYPE SRCDIR
    python3 -c 'import json,os,sys
t,d=sys.argv[1],sys.argv[2]; out=[]
for r,ds,fs in os.walk(d):
    for n in sorted(ds+fs):
        p=os.path.join(r,n); rel=os.path.relpath(p,d)
        out.append(rel+("/" if os.path.isdir(p) and not os.path.islink(p) else "")+(" -> "+os.readlink(p) if os.path.islink(p) else ""))
print(json.dumps({"type":t,"files":sorted(out)},ensure_ascii=False))' "$1" "$2"
}

echo "== source material" >&2
# -- work: private.img = real ext4 (64 MiB sparse) with a Qubes-like private layout
W=$SRC/work-private; mkdir -p "$W/home/user/Documents/projects/2024" "$W/rw/config" "$W/home/user/.config"
printf 'Quarterly report\n================\nAll numbers are fictitious.\n' > "$W/home/user/Documents/report.txt"
helper random 20000 11 > "$W/home/user/Documents/projects/2024/data.bin"
printf 'Grüße aus der Qube — ünïcödé ✓ 名前\n' > "$W/home/user/Documents/Ünïcödé-名前.txt"
ln -s Documents/report.txt "$W/home/user/latest-report"
printf '#!/bin/sh\n# This script will be executed at every VM startup\n' > "$W/rw/config/rc.local"; chmod 755 "$W/rw/config/rc.local"
printf '[General]\ntheme=dark\n' > "$W/home/user/.config/app.conf"
mk_ext4 "$SRC/work-private.img" 64M "$W" private 0b5eb0c5-0000-4000-8000-000000000005
FS_WORK=$(fslist ext4 "$W")

# -- standalone: root.img = GPT disk (BIOS boot + ext4 root), private.img = small ext4
R=$SRC/standalone-root; mkdir -p "$R/etc" "$R/boot/grub" "$R/usr/share/doc/standalone" "$R/usr/bin" "$R/usr/lib" "$R/home" "$R/root"
echo standalone > "$R/etc/hostname"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' > "$R/etc/os-release"
printf 'LABEL=root / ext4 defaults 0 1\n' > "$R/etc/fstab"
printf 'set timeout=1\nmenuentry "Debian" { linux /vmlinuz root=LABEL=root }\n' > "$R/boot/grub/grub.cfg"
printf 'This StandaloneVM root filesystem was made by make-fixtures.sh.\n' > "$R/usr/share/doc/standalone/README"
ln -s usr/bin "$R/bin"; ln -s usr/lib "$R/lib"
helper random 12000 13 > "$R/usr/bin/hello"; chmod 755 "$R/usr/bin/hello"
mk_gpt_disk "$SRC/standalone-root.img" 48M "$R" 0b5eb0c5-0000-4000-8000-000000000091
FS_SROOT=$(fslist gpt+ext4 "$R")
P=$SRC/standalone-private; mkdir -p "$P/home/user"
printf '# notes\n- standalone qubes keep their own root\n' > "$P/home/user/notes.md"
mk_ext4 "$SRC/standalone-private.img" 16M "$P" private 0b5eb0c5-0000-4000-8000-000000000092
FS_SPRIV=$(fslist ext4 "$P")

# -- firewall.xml (the R4 sample Qubes' own tests use) and notes.txt
cp "$SHARED/firewall-r4-sample.xml" "$SRC/firewall.xml"
printf 'Work qube — VPN only.\nCreated 2024-03-15; owner: ✓ Ünïcödé\n' > "$SRC/notes.txt"

# -- dom0 home: nested dirs, dotfiles, relative symlinks, odd names
H=$SRC/home/user; mkdir -p "$H/.config/qubes" "$H/.local/share/applications" "$H/Documents/deep/er/est" "$H/Pictures" "$H/empty dir"
printf '# ~/.bashrc\nalias ll="ls -l"\nexport EDITOR=vim\n' > "$H/.bashrc"
printf 'set number\n' > "$H/.vimrc"
printf '[qubes]\nbackup=weekly\n' > "$H/.config/qubes/settings.conf"
printf '[Desktop Entry]\nName=Work Terminal\nExec=qvm-run work xterm\n' > "$H/.local/share/applications/work-xterm.desktop"
printf 'deep\n' > "$H/Documents/deep/er/est/file.txt"
printf 'a file whose name has  spaces & (parens)\n' > "$H/Documents/odd name  with   spaces & (parens).txt"
printf 'UTF-8 name\n' > "$H/Documents/résumé ✓.txt"
: > "$H/Documents/empty-file"
printf '#!/bin/sh\necho backup\n' > "$H/run-backup.sh"; chmod 755 "$H/run-backup.sh"
printf 'notes of user\n' > "$H/user-notes.txt"
helper random 30000 17 > "$H/Pictures/noise.raw"
helper png "$H/Pictures/sunset.png" 3
ln -s ../Documents/deep/er/est/file.txt "$H/Pictures/link-to-file"
ln -s user-notes.txt "$H/notes-link"                       # target rewritten by Qubes' --xform
ln -s /etc/qubes-release "$H/absolute-link"
ln -s "odd name  with   spaces & (parens).txt" "$H/Documents/odd-link"
LONG=Documents/deep/er/est/a-file-name-that-is-long-enough-to-need-a-GNU-long-name-header-in-the-tar-stream.txt
printf 'path > 100 bytes: GNU tar writes an L (long name) header\n' > "$H/$LONG"
ln -s "../Documents/deep/er/est/a-file-name-that-is-long-enough-to-need-a-GNU-long-name-header-in-the-tar-stream.txt" "$H/Documents/long-target-link"
ln "$H/.bashrc" "$H/.bashrc-hardlink"                      # GNU tar: second one is a '1' member
find "$H" -exec touch -h -d '2024-03-15 10:00:00 UTC' {} +

# ───────────────────────────── backup builder ─────────────────────────────
# new_backup FILE PASS ID COMPRESSION CHUNK DESCRIPTION COVERS...
new_backup() {
    B_FILE=$1; B_PASS=$2; B_ID=$3; B_COMP=$4; B_CHUNK=$5; B_DESC=$6; shift 6
    B_COVERS=("$@")
    B_SPEC=$WORK/$B_FILE.spec; : > "$B_SPEC"
}
spec() { local IFS=$'\t'; printf '%s\n' "$*" >> "$B_SPEC"; }
vm()    { spec vm "$@"; }        # QID NAME CLASS LABEL TEMPLATE|- lvm|file
other() { spec other "$@"; }     # in qubes.xml but not in the backup
vol()   { spec vol "$@"; }       # QID VOLNAME IMAGE pax|gnu [FS-JSON]
vfile() { spec file "$@"; }      # QID NAME SRC (firewall.xml, notes.txt)
empty() { spec empty "$@"; }     # QID
home()  { spec home "$@"; }      # USER DIR

finish_backup() {
    local out=$MADE/$B_FILE xml=$WORK/$B_FILE.qubes.xml kind a b c d e f comp
    helper qubes-xml "$B_SPEC" > "$xml"
    : > "$QB_LOG"
    begin_backup "$out" "$B_PASS" "$B_ID" "$B_COMP" "$B_CHUNK"
    add_qubes_xml "$xml"
    while IFS=$'\t' read -r kind a b c d e f; do
        case $kind in
            vol)   add_volume_"$d" "vm$a/" "$b.img" "$c" ;;
            file)  add_file "vm$a/" "$b" "$c" ;;
            empty) add_empty "vm$a/" ;;
            home)  add_dom0_home "$a" "$b" ;;
        esac
    done < "$B_SPEC"
    end_backup
    comp=$B_COMP; [[ $comp == none ]] && comp=gzip
    python3 -c 'import json,sys
a=sys.argv
print(json.dumps({"description":a[1],"covers":a[8:],"passphrase":a[2],"backup_id":a[3],
  "compressed":a[4]!="none","compression":a[5],"chunk_size":int(a[6]),
  "stream_log":[dict(zip(("base","chunks","stream_bytes"),(l.split()[0],int(l.split()[1]),int(l.split()[2])))) for l in open(a[7])]},ensure_ascii=False))' \
        "$B_DESC" "$B_PASS" "$B_ID" "$B_COMP" "$comp" "$B_CHUNK" "$QB_LOG" "${B_COVERS[@]}" > "$WORK/$B_FILE.meta"
    helper entry "$B_SPEC" "$out" "$WORK/$B_FILE.meta" "$xml" "$WORK/cache.json" "$PARTS/$B_FILE.json"
    printf '  %-24s %9d bytes  (%ds)\n' "$B_FILE" "$(stat -c %s "$out")" $((SECONDS - start)) >&2
}
# assert_last_chunk_empty BASE — the stream of BASE was an exact multiple of the chunk size
assert_last_chunk_empty() {
    awk -v b="$1" -v c="$B_CHUNK" '$1==b { found=1; if ($3 % c != 0 || $3 == 0) exit 1 } END { exit !found }' "$QB_LOG" \
        || { echo "expected an empty final chunk for $1" >&2; return 1; }
}

echo "== backups" >&2
ALL="gzip-pax.bin gzip-gnu.bin bzip2.bin xz.bin lzma.bin zstd.bin uncompressed.bin big-sparse.bin huge-sparse.bin dense-2g.bin many-chunks.bin empty-final-chunk.bin demo.bin"

# gzip-pax / gzip-gnu: the full set — AppVM (ext4 private, firewall, notes), StandaloneVM (GPT root +
# ext4 private), dom0 home; 64 KiB chunks so that volumes span several chunks
for enc in pax gnu; do
    if [[ $enc == pax ]]; then f=gzip-pax.bin; pw='correct horse battery stäple'; id=20240315T101500-4242; pool=lvm
    else f=gzip-gnu.bin; pw='pa$$!word "quoted" \back'; id=20240315T101501-4243; pool=file; fi
    want "$f" || continue
    new_backup "$f" "$pw" "$id" gzip 16384 \
        "AppVM work (ext4 private.img, firewall.xml, notes.txt), StandaloneVM standalone (GPT root.img + ext4 private.img), dom0 home (long names, hard link, symlinks); 16 KiB chunks; volumes as $enc" \
        gzip multi-chunk "$( [[ $enc == pax ]] && echo pax-sparse || echo gnu-old-sparse)" ext4 gpt firewall notes dom0-home \
        gnu-long-name gnu-long-link hardlink xform-symlink-target "$( [[ $enc == pax ]] && echo utf8-passphrase || echo punctuation-passphrase)"
    other 2 debian-12-xfce TemplateVM black - "$pool"
    vm 5 work AppVM red debian-12-xfce "$pool"
    vol 5 private "$SRC/work-private.img" "$enc" "$FS_WORK"
    vfile 5 firewall.xml "$SRC/firewall.xml"
    vfile 5 notes.txt "$SRC/notes.txt"
    other 7 vault AppVM black debian-12-xfce "$pool"
    vm 9 standalone StandaloneVM purple - "$pool"
    vol 9 root "$SRC/standalone-root.img" "$enc" "$FS_SROOT"
    vol 9 private "$SRC/standalone-private.img" "$enc" "$FS_SPRIV"
    home user "$H"
    finish_backup
done

# small synthetic volumes for the compressor variants
mk_synth "$SRC/synth-a.img" 8M "0:8192:21 1048576:30000:22 5000000:4096:23"
mk_synth "$SRC/synth-b.img" 4M "4096:12288:31 3145728:65536:32"
printf 'Vault: offline secrets, no network.\n' > "$SRC/notes-vault.txt"
H2=$SRC/home2/alice; mkdir -p "$H2/.config" "$H2/Downloads"
printf 'alias q=qvm-ls\n' > "$H2/.bashrc"; printf 'x=1\n' > "$H2/.config/tool.ini"
ln -s ../.bashrc "$H2/Downloads/bashrc-link"

if want bzip2.bin; then
    new_backup bzip2.bin qubes 20240401T080000-1001 bzip2 32768 "AppVM mail: PAX private.img + firewall.xml, bzip2" \
        bzip2 pax-sparse firewall
    vm 12 mail AppVM blue debian-12-xfce lvm
    vol 12 private "$SRC/synth-a.img" pax
    vfile 12 firewall.xml "$SRC/firewall.xml"
    finish_backup
fi
if want xz.bin; then
    new_backup xz.bin qubes 20240401T080001-1002 xz 32768 "TemplateVM debian-12-min (GPT root.img + private.img, GNU sparse), xz" \
        xz gnu-old-sparse templatevm gpt
    vm 3 debian-12-min TemplateVM black - file
    vol 3 root "$SRC/standalone-root.img" gnu "$FS_SROOT"
    vol 3 private "$SRC/synth-b.img" gnu
    finish_backup
fi
if want lzma.bin; then
    new_backup lzma.bin qubes 20240401T080002-1003 lzma 32768 "AppVM vault: PAX private.img + notes.txt, legacy .lzma" \
        lzma pax-sparse notes
    vm 7 vault AppVM black debian-12-xfce lvm
    vol 7 private "$SRC/synth-a.img" pax
    vfile 7 notes.txt "$SRC/notes-vault.txt"
    finish_backup
fi
if want zstd.bin; then
    new_backup zstd.bin qubes 20240401T080003-1004 zstd 32768 "AppVM dev: GNU-sparse private.img; dom0 home of user alice; zstd" \
        zstd gnu-old-sparse dom0-home
    vm 14 dev AppVM green debian-12-xfce file
    vol 14 private "$SRC/synth-b.img" gnu
    home alice "$H2"
    finish_backup
fi
if want uncompressed.bin; then
    new_backup uncompressed.bin qubes 20240401T080004-1005 none 32768 \
        "compressed=False (header keeps compression-filter=gzip): PAX + GNU volumes, a DispVM with only the 'empty' file" \
        uncompressed pax-sparse gnu-old-sparse empty-file dispvm
    other 2 debian-12-xfce TemplateVM black - lvm
    vm 20 media AppVM orange debian-12-xfce lvm
    vol 20 private "$SRC/synth-a.img" pax
    vm 21 archive AppVM gray debian-12-xfce file
    vol 21 private "$SRC/synth-b.img" gnu
    vm 22 disp1234 DispVM red debian-12-xfce lvm
    empty 22
    finish_backup
fi

# Big scrypt parameters, as `scrypt enc` picks them on bigger dom0s (issue 10): N=2^21, r=8
# (2 GiB per KDF: a 16 GiB+ machine) and N=2^22 (4 GiB: 32 GiB+), each with one small chunk so
# that a restore is three KDFs. The page must open both (V in segments; 2^22 by recomputing).
# `-f`: scrypt would otherwise refuse parameters beyond its own memory and time estimate.
for big in 21 22; do
    if want kdf-$big.bin; then
        new_backup kdf-$big.bin qubes 20240405T100000-21$big gzip 65536 \
            "scrypt N=2^$big r=8 p=1 (what scrypt enc picks with $(( 1 << (big - 17) )) GiB+ of RAM): one AppVM, one chunk" \
            big-kdf pax-sparse
        vm 40 kdf$big AppVM purple debian-12-xfce lvm
        vol 40 private "$SRC/synth-a.img" pax
        SCRYPT_ARGS="-f --logN $big -r 8 -p 1" finish_backup
    fi
done
# p=4 (a dom0 with <= 4 GiB gives scrypt enc N=2^19 r=8 p=4; small N here): lanes run apart.
if want kdf-p4.bin; then
    new_backup kdf-p4.bin qubes 20240405T100001-2104 gzip 32768 \
        "scrypt N=2^14 r=8 p=4: four lanes per KDF, several chunks" lanes pax-sparse
    vm 41 lanes AppVM purple debian-12-xfce lvm
    vol 41 private "$SRC/synth-a.img" pax
    SCRYPT_ARGS="--logN 14 -r 8 -p 4" finish_backup
fi

# big-sparse: 9 GiB apparent size, data below and above 8 GiB (a run crossing 8 GiB, the last
# 4 KiB of the file is data, so the map has no (size,0) entry), in both encodings
if want big-sparse.bin; then
    G=$((1024 * 1024 * 1024))
    mk_synth "$SRC/big.img" 9G "0:65536:41 $((4 * G + 12345 * 512)):20000:42 $((8 * G - 4096)):8192:43 $((8 * G + G / 2)):30000:44 $((9 * G - 4096)):4096:45"
    new_backup big-sparse.bin qubes 20240402T120000-2001 gzip 65536 \
        "9 GiB private.img with data runs below/above/across 8 GiB: vm30 via PAX (offsets > 8 GiB, realsize 9 GiB), vm31 via GNU old sparse (base-256 numbers, extension blocks)" \
        big-offsets base-256 pax-sparse gnu-old-sparse gnu-sparse-extension-blocks ends-in-data
    vm 30 bigpax AppVM yellow debian-12-xfce lvm
    vol 30 private "$SRC/big.img" pax
    vm 31 biggnu AppVM yellow debian-12-xfce file
    vol 31 private "$SRC/big.img" gnu
    finish_backup
fi

# huge-sparse: a 20 GiB private.img with 20 MiB of data (a template's or standalone's root.img is
# routinely 10-20 GiB and mostly holes): what Firefox's storage refused as one file and what every
# engine must restore (issue 11). The data is text, so the fixture stays small; the last run ends
# the image.
if want huge-sparse.bin; then
    G=$((1024 * 1024 * 1024)); M=$((1024 * 1024))
    rm -f -- "$SRC/huge.img"; truncate -s 20G "$SRC/huge.img"
    for spec in "0:$((8 * M))" "$((10 * G)):$((8 * M))" "$((20 * G - 4 * M)):$((4 * M))"; do
        IFS=: read -r o l <<< "$spec"
        head -c "$l" < <(yes "qubes-rescue huge-sparse run at byte $o") | dd of="$SRC/huge.img" bs=1M seek="$o" oflag=seek_bytes conv=notrunc status=none
    done
    new_backup huge-sparse.bin qubes 20240402T120000-2002 gzip $((16 * M)) \
        "20 GiB private.img with 20 MiB of text data in 3 runs, the last one ending the image" \
        huge pax-sparse ends-in-data
    vm 32 huge AppVM yellow debian-12-xfce lvm
    vol 32 private "$SRC/huge.img" pax
    finish_backup
fi

# dense-2g: a 2 GiB private.img with no hole at all (a full volume, or a dense `root.img`): the
# whole image is one data run, so every output must carry 2 GiB (issue 11: 2 GB+ in every
# engine). Text, compressed with zstd, so the fixture stays small (one chunk).
if want dense-2g.bin; then
    rm -f -- "$SRC/dense.img"
    head -c $((2 * 1024 * 1024 * 1024)) < <(yes "qubes-rescue dense-2g: every block of this volume holds data.") > "$SRC/dense.img"
    new_backup dense-2g.bin qubes 20240402T120000-2003 zstd $((16 * 1024 * 1024)) \
        "2 GiB private.img without holes (text data): the dense case of every output" \
        dense pax-sparse
    vm 33 dense AppVM green debian-12-xfce lvm
    vol 33 private "$SRC/dense.img" pax
    finish_backup
fi

# many-chunks: > 1000 chunks (names .000 … .1000+), 512-byte chunks of an incompressible stream
if want many-chunks.bin; then
    mk_synth "$SRC/random.img" 1M "0:$((1003 * 512)):51"
    new_backup many-chunks.bin qubes 20240403T000000-3001 gzip 512 \
        "private.img whose gzip stream spans > 1000 chunks of 512 bytes (.000 … .1000+); qubes.xml itself spans several chunks" \
        four-digit-chunk-index many-chunks multi-chunk-qubes-xml
    vm 40 random AppVM red debian-12-xfce lvm
    vol 40 private "$SRC/random.img" pax
    finish_backup
fi

# empty-final-chunk: uncompressed streams that are exact multiples of the chunk size (20480)
if want empty-final-chunk.bin; then
    mk_synth "$SRC/exact-pax.img" 1M "65536:$((20480 - 3072)):61"        # 3072 + data = 20480
    mk_synth "$SRC/exact-gnu.img" 1M "131072:32768:62"                    # GNU tar: 40960 bytes
    new_backup empty-final-chunk.bin qubes 20240404T000000-4001 none 20480 \
        "uncompressed; both volume streams are exact multiples of the 20480-byte chunk size, so each ends with an EMPTY chunk (128-byte .enc)" \
        empty-final-chunk uncompressed
    vm 50 exactpax AppVM green debian-12-xfce lvm
    vol 50 private "$SRC/exact-pax.img" pax
    vm 51 exactgnu AppVM green debian-12-xfce file
    vol 51 private "$SRC/exact-gnu.img" gnu
    finish_backup
    assert_last_chunk_empty vm50/private.img
    assert_last_chunk_empty vm51/private.img
fi

# demo: friendly backup for the web page, passphrase "demo", real 100 MiB chunk size
if want demo.bin; then
    D=$SRC/demo-personal; mkdir -p "$D/home/user/Pictures" "$D/home/user/notes" "$D/rw/config"
    cat > "$D/home/user/README.txt" <<'TXT'
Welcome to the qubes-rescue demo!

This file lives in the private volume (private.img, an ext4 file system) of the qube
"personal", inside a Qubes OS backup that was decrypted and unpacked entirely in your
browser. Nothing was uploaded anywhere.
TXT
    helper png "$D/home/user/Pictures/holiday.png" 5
    printf 'Shopping list\n- coffee\n- bread\n- tomatoes\n' > "$D/home/user/notes/shopping.txt"
    printf 'Ideas\n* learn to restore backups without Qubes ✓\n' > "$D/home/user/notes/ideas.md"
    mk_ext4 "$SRC/demo-personal.img" 32M "$D" private 0b5eb0c5-0000-4000-8000-00000000de06
    FS_DP=$(fslist ext4 "$D")
    D2=$SRC/demo-work; mkdir -p "$D2/home/user/Documents"
    printf 'Meeting notes — Monday\n1. ship the release\n2. back up everything\n' > "$D2/home/user/Documents/meeting.txt"
    printf 'name,amount\nrent,1200\nfood,300\n' > "$D2/home/user/Documents/budget.csv"
    mk_ext4 "$SRC/demo-work.img" 32M "$D2" private 0b5eb0c5-0000-4000-8000-00000000de08
    FS_DW=$(fslist ext4 "$D2")
    H3=$SRC/home3/user; mkdir -p "$H3/.config" "$H3/Desktop"
    printf '# dom0 .bashrc\n' > "$H3/.bashrc"
    printf 'Remember: dom0 is for administration only.\n' > "$H3/Desktop/todo.txt"
    ln -s Desktop/todo.txt "$H3/todo-link"
    new_backup demo.bin demo 20250101T090000-1000 gzip 104857600 \
        "demo for the web page: qubes personal (ext4 with README.txt, a PNG, notes/), work (+ firewall.xml), dom0 home" \
        demo gzip pax-sparse ext4 firewall dom0-home
    other 2 debian-12-xfce TemplateVM black - lvm
    vm 6 personal AppVM yellow debian-12-xfce lvm
    vol 6 private "$SRC/demo-personal.img" pax "$FS_DP"
    vm 8 work AppVM blue debian-12-xfce lvm
    vol 8 private "$SRC/demo-work.img" pax "$FS_DW"
    vfile 8 firewall.xml "$SRC/firewall.xml"
    home user "$H3"
    finish_backup
fi

# ───────────────────────────── manifest + shared copies ─────────────────────────────
TOOLS=$(python3 -c 'import json,sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
    tar "$(tar --version | head -1)" scrypt "$(scrypt --version)" gzip "$(gzip --version | head -1)" \
    bzip2 "$(bzip2 --help 2>&1 | head -1)" xz "$(xz --version | head -1)" zstd "$(zstd --version)" \
    python3 "$(python3 --version)" mke2fs "$(mke2fs -V 2>&1 | head -1)" sgdisk "$(sgdisk --version | head -1)") \
ORDER=$ALL PYTHONPATH="$HERE" python3 "$HELPER" combine "$MADE/manifest.json" "$MADE/manifest.json" "$PARTS"/*.json

mkdir -p "$FIX/qubes-testsuite"
cp -f "$SHARED"/qubes-testsuite/* "$FIX/qubes-testsuite/"
cp -f "$SHARED"/*.xml "$FIX/"
chmod u+w "$FIX"/qubes-testsuite/* "$FIX"/*.xml

echo "== done in $((SECONDS - start)) s; $(du -sh --apparent-size "$MADE" | cut -f1) in $MADE" >&2
