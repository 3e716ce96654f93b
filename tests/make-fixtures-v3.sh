#!/usr/bin/env bash
# make-fixtures-v3.sh — (re)generate tests/fixtures/made-v3/*.bin and tests/fixtures/made-v3/manifest.json:
# Qubes OS backups in the OLD formats 3 (Qubes R2 final … R3.2) and 2 (R2 beta), made with the REAL
# tools (GNU tar, openssl enc/dgst, gzip/bzip2/xz, mke2fs) driven exactly the way the old writers drove
# them.  Proven independently of qubes-rescue by tests/check-fixtures-v3.sh (manual recipes only).
#
# Writers reproduced (read in QubesOS/qubes-core-admin; docs FORMAT.md §9, §7.3):
#   format 3: branch release3.2, core/backup.py (backup_prepare, prepare_backup_header, backup_do,
#             wait_backup_feedback, SendWorker)
#   format 2: commit 2c3159c7 (last commit before fc0c0adf "backup format 3"), same functions
#
# Usage: tests/make-fixtures-v3.sh                 (re-runnable; everything is rebuilt)
#        FIXTURES="v3-enc-gzip.bin" tests/make-fixtures-v3.sh   (rebuild only these; the other
#                                                   manifest entries are kept)
# Needs: GNU tar, openssl (any version with `enc -md md5` and `dgst -hmac`), gzip, bzip2, xz,
#        mke2fs (e2fsprogs >= 1.43, for -d), python3 (>= 3.6), a file system with sparse files.
#
# ── What is identical to Qubes, what is scaled down, what is only equivalent ──────────────────
# Identical: backup-header bytes and key order (v3: version, hmac-algorithm, crypto-algorithm,
#   encrypted, compressed, compression-filter only when compressed; v2: no version line and no
#   compression-filter); every `.hmac` file is the stdout of `openssl dgst -<ALG> -hmac <P>` fed the
#   member on stdin (today's OpenSSL 3 prints "SHA2-512(stdin)= <hex>", R3's OpenSSL 1.0 printed
#   "(stdin)= <hex>"; readers take the text after '='); inner tar argv
#     v3: tar -Pc --sparse -f - -C DIR [--dereference] --xform s:^BASE:SUBDIR\0: [--use-compress-program=F] BASE
#         (Qubes wrote to a FIFO instead of stdout: same bytes)
#     v2: tar -Pc --sparse -f FIFO --tape-length N -C DIR --xform s:^BASE:SUBDIR\0: BASE
#         (no --dereference and no compressor in v2; the new-volume prompt is answered with "\n"
#          on tar's stdin like backup_do did, one FIFO open per volume)
#   encryption `openssl enc -e -aes-256-cbc -pass pass:P` — one stream per FILE in v3, one per
#   VOLUME in v2; unencrypted+compressed v2 volumes are piped through `gzip` one by one; the outer
#   archive is one `tar -cO --posix -C STAGE NAME` per member (SendWorker); member order = R3
#   backup_prepare order (qubes.xml; non-template qubes sorted by name with private.img, icon.png,
#   [apps.templates|apps, kernels], firewall.xml, whitelisted-appmenus.list, [root.img]; then
#   templates as whole directories `vmN/.` -> pieces `vmN/..000`, inner `vmN/./root.img`; dom0 home
#   `dom0-home/<user>` last, tarred without --dereference).
# Scaled down (documented in the manifest of every backup):
#   * v3 pieces: wait_backup_feedback() copies the stream in reads of buffer_size=409600 bytes and
#     starts a new piece when bytes_copied + buffer_size > size_limit (100 MiB): 256 reads per
#     piece.  We run the very same loop with buffer 4096 / limit 16384 (4 reads, 16 KiB pieces).
#     Consequence reproduced faithfully: a trailing EMPTY piece appears whenever the number of
#     non-empty reads of the stream is a multiple of the reads per piece (this includes, but is
#     not limited to, a stream that is an exact multiple of the piece size).
#   * v2 volumes: --tape-length 20 (KiB) instead of 100000.
# Only equivalent:
#   * `-md md5` is given explicitly: R3/R2 ran OpenSSL 1.0 whose default was MD5; OpenSSL >= 1.1
#     defaults to SHA-256 (the restore side always says -md MD5).
#   * The salt is random (as in Qubes), so ciphertexts differ between runs.  A fixed `-S SALT` is
#     NOT usable: OpenSSL 3 then omits the "Salted__"+salt header, which Qubes' files always have.
#   * Source files get fixed mtimes; owner/group and the outer pax timestamps come from this
#     machine (the outer tar is not byte-reproducible, exactly like two real backups).
#   * v2 "encrypted and compressed" (openssl enc -z) is NOT produced: the v2 writer refused it from
#     26b32ca5 on (only header-less R2-beta3 backups have it) and OpenSSL 3 has no zlib (`-z`).
#   * v2 header HMAC algorithm: SHA1 (the default from 4c29d743 to dba6798a, 2014-01 … 2014-09-18;
#     the header was introduced 2014-01-15).  The v3 default is SHA512.
#
# ── manifest.json (schema 1, same layout as tests/fixtures/made/manifest.json where it applies) ──
# { "schema": 1, "generator": "tests/make-fixtures-v3.sh", "tools": {...}, "backups": [ {
#     "file", "size", "sha256", "description", "covers": [...],
#     "format": 3 | 2, "passphrase": "qubes",
#     "encrypted": bool, "compressed": bool, "compression": "gzip"|"bzip2"|"xz"|null,
#     "hmac_algorithm": "SHA512", "crypto_algorithm": "aes-256-cbc",
#     "openssl_enc": "openssl enc -d -aes-256-cbc -md md5 -pass pass:qubes",  (how to decrypt)
#     "pieces": {"buffer": 4096, "limit": 16384, "piece_bytes": 16384} (v3) |
#     "tape_length_kib": 20 (v2; every volume but the last is tape_length_kib*1024 bytes of tar),
#     "header": "version=3\n..." | null (no header),
#     "qubes_xml": {"size", "sha256", "pieces"},
#     "members": [ {"name": "backup-header", "size": 116}, ... ]   # every outer member, in order
#     "streams": [ {"base": "vm5/private.img", "pieces": 3, "piece_sizes": [...], "stream_bytes": n} ]
#     "qubes": [ {                        # qubes whose data is in the backup, in backup order
#        "name", "class": "AppVM"|"TemplateVM"|"StandaloneVM"|"AdminVM",
#        "xml_element": "QubesAppVm" ..., "qid", "label", "template": name|null,
#        "backup_path": "vm5" (as in qubes.xml: NO trailing slash) | "appvms/work" | "dom0-home/user",
#        "user": "user" (dom0 only),
#        "files": [ {
#           "path": "private.img" | "apps.templates/x.desktop" | "home/user/.bashrc",
#           "archive_name": "vm5/private.img" | "vm1/./root.img" | "dom0-home/user/.bashrc",
#                                        # as the inner tar stores it (= recipe output path)
#           "outer_base": "vm5/private.img" | "vm1/." | "dom0-home/user",   # pieces "<base>.NNN"
#           "role": "volume"|"icon"|"firewall"|"appmenus"|"apps"|"kernels"|"config"|"template-dir"|"home",
#           "type": "file"|"dir"|"symlink",
#           "encoding": "gnu-old-sparse" | "gnu",   # files: how GNU tar stored it
#           "size", "sha256" (OMITTED for files > 1 GiB: use runs), "data_bytes", "runs": [
#              {"offset", "length", "sha256"} ]   # volumes: maximal runs of non-zero 512-byte
#                                                 #  blocks; every byte outside them is zero
#           "mode": "0644" (home entries), "target": "..." (symlinks, as stored)
#        } ] } ],
#     "not_in_backup": [ {"name", "qid", "backup_path"} ]  # listed in qubes.xml with
#                                        # backup_content="False"; backup_path is "" or STALE (R3 never
#                                        # clears it: sys-firewall keeps "vm3" from an earlier backup)
# } ] }
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTDIR=${OUTDIR:-$HERE/fixtures/made-v3}
for t in tar openssl gzip bzip2 xz mke2fs python3; do
    command -v "$t" > /dev/null || { echo "make-fixtures-v3.sh: missing tool $t" >&2; exit 1; }
done
tar --version | head -1 | grep -q 'GNU tar' || { echo "make-fixtures-v3.sh: needs GNU tar" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/make-fixtures-v3.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
mkdir -p "$OUTDIR"

TOOLS=$(python3 - <<'PY'
import json, subprocess
def v(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    return r.stdout.strip().splitlines()[0] if r.stdout.strip() else ''
print(json.dumps({'tar': v(['tar', '--version']), 'openssl': v(['openssl', 'version']),
                  'gzip': v(['gzip', '--version']), 'bzip2': v(['sh', '-c', 'bzip2 --help 2>&1']),
                  'xz': v(['xz', '--version']), 'mke2fs': v(['sh', '-c', 'mke2fs -V 2>&1']),
                  'python3': v(['python3', '--version'])}))
PY
)
export TOOLS

cat > "$WORK/make.py" <<'PY'
import hashlib, json, os, random, re, stat, subprocess, sys, tarfile

from sparse_extents import extents          # tests/sparse_extents.py (shared with the v4 tools)

P = 'qubes'                                 # passphrase of every fixture
WORK, OUTDIR = sys.argv[1], sys.argv[2]
ONLY = os.environ.get('FIXTURES', '').split()
SRC = os.path.join(WORK, 'src')
MTIME = 1470279173                          # 2016-08-04, an R3.2-era timestamp
BLK = 512
V3_BUF, V3_LIMIT = 4096, 16384              # Qubes: 409600, 100 MiB (see header comment)
V2_TAPE_KIB = 20                            # Qubes: 100000

def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)

def quiet(cmd, **kw):                       # openssl 3 warns about the legacy KDF on stderr
    r = subprocess.run(cmd, stderr=subprocess.PIPE, **kw)
    if r.returncode:
        sys.exit('%s failed: %s' % (cmd[:3], r.stderr.decode(errors='replace')))
    return r

# ───────────────────────── source material ─────────────────────────
def rnd(n, seed):
    return random.Random(seed).getrandbits(8 * n).to_bytes(n, 'little') if n else b''

def synth(path, size, runs, sig=None):
    """sparse image: `size` bytes, pseudo-random data at (offset, length, seed) runs,
    optionally a NUL-padded signature in the first 512 bytes (like Qubes' own test images)"""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.truncate(size)
        if sig:
            f.seek(0); f.write(sig.encode().ljust(BLK, b'\0'))
        for off, ln, seed in runs:
            f.seek(off); f.write(rnd(ln, seed))
    return path

def write(path, data, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        os.chmod(path, mode)
    return path

def png(path, seed):
    import struct, zlib
    r = random.Random(seed); w = h = 16
    raw = b''.join(b'\0' + bytes(r.randrange(256) for _ in range(3 * w)) for _ in range(h))
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    write(path, b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
          + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))

def ext4(path, size, srcdir, uuid):
    if os.path.exists(path):
        os.remove(path)
    with open(path, 'wb') as f:
        f.truncate(size)
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(MTIME))
    run(['mke2fs', '-q', '-F', '-t', 'ext4', '-L', 'private', '-U', uuid,
         '-E', 'nodiscard,hash_seed=' + uuid, '-d', srcdir, path], env=env)

def fix_times(top):
    for root, dirs, files in os.walk(top):
        for n in dirs + files:
            os.utime(os.path.join(root, n), (MTIME, MTIME), follow_symlinks=False)
    os.utime(top, (MTIME, MTIME), follow_symlinks=False)

FIREWALL_R3 = ('<QubesFirewallRules policy="deny" dns="allow" icmp="allow" yumProxy="allow">\n'
               '  <rule address="192.168.0.1" netmask="32" proto="tcp" port="443"/>\n'
               '  <rule address="example.com" netmask="32" proto="any"/>\n'
               '</QubesFirewallRules>\n')
APPMENUS = 'gnome-terminal.desktop\nnautilus.desktop\nfirefox.desktop\n'

def desktop(name):
    return '[Desktop Entry]\nType=Application\nName=%%VMNAME%%: %s\nExec=qvm-run -q --tray -a %%VMNAME%% -- %s\n' % (name, name.lower())

def make_sources():
    icons = os.path.join(SRC, 'icons')                   # /usr/share/qubes/icons/<label>.png
    for i, l in enumerate(['red', 'green', 'blue', 'black', 'purple']):
        png(os.path.join(icons, l + '.png'), 100 + i)
    # work: ext4 private.img with documents + 40 KB of random data (-> >= 3 pieces of 16 KiB)
    d = os.path.join(SRC, 'work-fs')
    write(os.path.join(d, 'home/user/Documents/report.txt'), 'Quarterly report (R3 era)\nAll numbers are fictitious.\n')
    write(os.path.join(d, 'home/user/Documents/data.bin'), rnd(40000, 11))
    write(os.path.join(d, 'rw/config/rc.local'), '#!/bin/sh\n# executed at every VM startup\n', 0o755)
    fix_times(d)
    a = os.path.join(SRC, 'appvms/work'); os.makedirs(a, exist_ok=True)
    ext4(os.path.join(a, 'private.img'), 8 << 20, d, '0b5eb0c5-0000-4000-8000-000000000305')
    os.symlink(os.path.join(icons, 'red.png'), os.path.join(a, 'icon.png'))
    write(os.path.join(a, 'firewall.xml'), FIREWALL_R3)
    write(os.path.join(a, 'whitelisted-appmenus.list'), APPMENUS)
    write(os.path.join(a, 'work.conf'), '<domain type="xen"><name>work</name></domain>\n')   # not backed up
    # work-web (qid 50: the vm5 / vm50 prefix trap)
    a = os.path.join(SRC, 'appvms/work-web')
    synth(os.path.join(a, 'private.img'), 4 << 20, [(4096, 6000, 21), (3 << 20, 2048, 22)], 'work-web/private')
    os.symlink(os.path.join(icons, 'green.png'), os.path.join(a, 'icon.png'))
    write(os.path.join(a, 'whitelisted-appmenus.list'), 'firefox.desktop\n')
    # standalone (updateable AppVM): apps/ and kernels/ directories, root.img
    a = os.path.join(SRC, 'appvms/standalone')
    synth(os.path.join(a, 'private.img'), 2 << 20, [(8192, 3000, 31)], 'standalone/private')
    synth(os.path.join(a, 'root.img'), 10 << 20, [(0, 4096, 32), (5 << 20, 9000, 33)], 'standalone/root')
    os.symlink(os.path.join(icons, 'blue.png'), os.path.join(a, 'icon.png'))
    write(os.path.join(a, 'apps/standalone-xterm.desktop'), desktop('XTerm'))
    write(os.path.join(a, 'apps/standalone-firefox.desktop'), desktop('Firefox'))
    write(os.path.join(a, 'kernels/vmlinuz'), rnd(3000, 34))
    write(os.path.join(a, 'kernels/initramfs'), rnd(2000, 35))
    write(os.path.join(a, 'kernels/modules.img'), rnd(1500, 36))
    write(os.path.join(a, 'whitelisted-appmenus.list'), 'xterm.desktop\n')
    # TemplateVM fedora-23: the whole directory is one backed-up file
    t = os.path.join(SRC, 'vm-templates/fedora-23')
    synth(os.path.join(t, 'root.img'), 16 << 20, [(0, 4096, 41), (1 << 20, 12000, 42), ((16 << 20) - 1024, 1024, 43)], 'fedora-23/root')
    synth(os.path.join(t, 'private.img'), 4 << 20, [(512, 2000, 44)], 'fedora-23/private')
    synth(os.path.join(t, 'volatile.img'), 2 << 20, [])                      # all holes
    os.symlink(os.path.join(icons, 'black.png'), os.path.join(t, 'icon.png'))
    write(os.path.join(t, 'apps.templates/fedora-23-xterm.desktop'), desktop('XTerm'))
    write(os.path.join(t, 'apps.templates/fedora-23-gnome-terminal.desktop'), desktop('Terminal'))
    write(os.path.join(t, 'whitelisted-appmenus.list'), 'gnome-terminal.desktop\n')
    write(os.path.join(t, 'fedora-23.conf'), '<domain type="xen"><name>fedora-23</name></domain>\n')
    # big: > 8 GiB sparse private.img (GNU base-256 numbers in the 'S' header)
    synth(os.path.join(SRC, 'appvms/big/private.img'), 9 << 30,
          [(0, 4096, 51), (3 << 30, 8192, 52), ((8 << 30) + 4096, 4096, 53), ((9 << 30) - 4096, 4096, 54)], 'big/private')
    os.symlink(os.path.join(icons, 'purple.png'), os.path.join(SRC, 'appvms/big/icon.png'))
    # dom0 home
    h = os.path.join(SRC, 'home/user')
    write(os.path.join(h, '.bashrc'), '# ~/.bashrc\nalias ll="ls -l"\n')
    write(os.path.join(h, '.config/qubes/settings.conf'), '[qubes]\nbackup=weekly\n')
    write(os.path.join(h, 'Documents/notes.txt'), 'R3 dom0 notes\n')
    write(os.path.join(h, 'Documents/odd name (1).txt'), 'name with spaces and parens\n')
    write(os.path.join(h, 'Pictures/noise.raw'), rnd(9000, 61))
    write(os.path.join(h, 'bin/run-backup.sh'), '#!/bin/sh\nqvm-backup -e /mnt/backup\n', 0o755)
    os.makedirs(os.path.join(h, 'empty dir'))
    os.symlink('Documents/notes.txt', os.path.join(h, 'notes-link'))
    os.symlink('/etc/qubes-release', os.path.join(h, 'absolute-link'))
    os.chmod(os.path.join(h, 'Documents'), 0o700)
    for top in (icons, os.path.join(SRC, 'appvms'), os.path.join(SRC, 'vm-templates'), os.path.join(SRC, 'home')):
        fix_times(top)
    # qubes.xml directory (/var/lib/qubes)
    os.makedirs(os.path.join(SRC, 'varlibqubes'), exist_ok=True)

# ───────────────────────── helpers for the manifest ─────────────────────────
def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for d in iter(lambda: f.read(1 << 22), b''):
            h.update(d)
    return h.hexdigest()

def runs_of(path):
    """maximal runs of non-zero 512-byte blocks, with sha256 per run"""
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
                    if b.count(0) != len(b):
                        if runs and runs[-1][1] == off + i:
                            runs[-1][1] = off + i + len(b)
                        else:
                            runs.append([off + i, off + i + len(b)])
                off += len(buf)
        out = []
        for a, b in runs:
            f.seek(a)
            out.append({'offset': a, 'length': b - a, 'sha256': hashlib.sha256(f.read(b - a)).hexdigest()})
    return size, out

def file_entry(src, path, arch, base, role, with_runs=False):
    st = os.lstat(src)
    e = {'path': path, 'archive_name': arch, 'outer_base': base, 'role': role}
    if stat.S_ISLNK(st.st_mode):
        e.update(type='symlink', target=os.readlink(src))
    elif stat.S_ISDIR(st.st_mode):
        e['type'] = 'dir'
    else:
        st = os.stat(src)
        sparse = st.st_blocks * 512 < st.st_size
        e.update(type='file', encoding='gnu-old-sparse' if sparse else 'gnu', size=st.st_size)
        if st.st_size <= (1 << 30):
            e['sha256'] = sha256_file(src)
        if with_runs:
            _, runs = runs_of(src)
            e.update(data_bytes=sum(r['length'] for r in runs), runs=runs)
    return e

def xform_target(e, base, subdir):
    """GNU tar applies --xform s:^BASE:SUBDIR\\0: to symlink targets too, and Qubes does not escape
    BASE: for a template directory BASE is '.', which matches ANY first character, so every
    (non-dereferenced) symlink target gets the prefix: /usr/x -> vm-templates/t//usr/x"""
    if e.get('type') == 'symlink':
        t = re.sub('^' + base, lambda mo: subdir + mo.group(0), e['target'], count=1)
        if t != e['target']:
            e['target_original'] = e['target']
            e['target'] = t
    return e

def disk_usage(path):
    st = os.lstat(path); total = st.st_blocks * 512
    if stat.S_ISDIR(st.st_mode):
        for n in os.listdir(path):
            total += disk_usage(os.path.join(path, n))
    return total

# ───────────────────────── R3 qubes.xml (core/qubes.py QubesVmCollection.save) ─────────────────────────
ELEMENT = {'AppVM': 'QubesAppVm', 'StandaloneVM': 'QubesAppVm', 'TemplateVM': 'QubesTemplateVm',
           'NetVM': 'QubesNetVm', 'ProxyVM': 'QubesProxyVm', 'AdminVM': 'QubesAdminVm'}
KIND_DIR = {'AppVM': 'appvms', 'StandaloneVM': 'appvms', 'TemplateVM': 'vm-templates',
            'NetVM': 'servicevms', 'ProxyVM': 'servicevms'}

def qubes_xml(vms, home_size):
    """vms: list of dicts name/qid/cls/label/template/in_backup/backup_path/backup_size"""
    byname = {v['name']: v for v in vms}
    tq = next((v['qid'] for v in vms if v['cls'] == 'TemplateVM'), 1)
    L = ['<QubesVmCollection clockvm="2" default_fw_netvm="2" default_kernel="4.4.14-11" '
         'default_netvm="3" default_template="%d" updatevm="3">' % tq]
    L.append('  <QubesAdminVm backup_content="%s" backup_path="%s" backup_size="%d" '
             'default_user="user" dir_path="/var/lib/qubes/servicevms/dom0" include_in_backups="True" '
             'internal="False" label="black" name="dom0" netid="0" qid="0" template_qid="none"/>'
             % ('True' if home_size is not None else 'False',
                'dom0-home/user' if home_size is not None else '', home_size or 0))
    for v in sorted(vms, key=lambda v: v['qid']):
        tpl = byname.get(v['template']) if v['template'] else None
        d = '/var/lib/qubes/%s/%s' % (KIND_DIR[v['cls']], v['name'])
        attrs = [('backup_content', 'True' if v['in_backup'] else 'False'),
                 ('backup_path', v['backup_path']),
                 ('backup_size', str(v.get('backup_size', 0))),
                 ('conf_file', v['name'] + '.conf'), ('debug', 'False'), ('default_user', 'user'),
                 ('dir_path', d), ('include_in_backups', 'True'), ('installed_by_rpm',
                  'True' if v['cls'] == 'TemplateVM' else 'False'),
                 ('internal', 'False'), ('kernel', '4.4.14-11'), ('kernelopts', 'nopat'),
                 ('label', v['label']), ('maxmem', '4000'), ('memory', '400'), ('name', v['name']),
                 ('netvm_qid', 'none' if v['cls'] in ('NetVM',) else '3'), ('pcidevs', '[]'),
                 ('pool_name', 'default'), ('private_img', 'private.img'), ('qid', str(v['qid'])),
                 ('qrexec_timeout', '60'), ('root_img', 'root.img'),
                 ('services', "{'meminfo-writer': True}"),
                 ('template_qid', str(tpl['qid']) if tpl else ('1' if v['template'] else 'none')),
                 ('uses_default_kernel', 'True'), ('uses_default_kernelopts', 'True'),
                 ('uses_default_netvm', 'True'), ('vcpus', '2'), ('volatile_img', 'volatile.img')]
        if v['cls'] in ('NetVM', 'ProxyVM'):
            attrs.append(('netid', str(v['qid'])))
        L.append('  <%s %s/>' % (ELEMENT[v['cls']], ' '.join('%s="%s"' % kv for kv in attrs)))
    L.append('</QubesVmCollection>')
    return '\n'.join(L) + '\n'

# ───────────────────────── the writers ─────────────────────────
class Backup:
    def __init__(self, name, fmt, encrypted, compression, hmac_alg, description, covers, header=True):
        self.name, self.fmt, self.encrypted = name, fmt, encrypted
        self.compression = compression              # None = compressed=False
        self.alg = hmac_alg
        self.description, self.covers = description, covers
        self.stage = os.path.join(WORK, 'stage-' + name)
        os.makedirs(self.stage)
        self.out_path = os.path.join(OUTDIR, name)
        self.partial = self.out_path + '.partial'
        self.out = open(self.partial, 'wb')
        self.streams = []
        self.header = None
        if header:
            if fmt == 3:
                h = 'version=3\nhmac-algorithm=%s\ncrypto-algorithm=aes-256-cbc\nencrypted=%s\ncompressed=%s\n' % (
                    hmac_alg, encrypted, compression is not None)
                if compression:
                    h += 'compression-filter=%s\n' % compression
            else:
                h = 'hmac-algorithm=%s\ncrypto-algorithm=aes-256-cbc\nencrypted=%s\ncompressed=%s\n' % (
                    hmac_alg, encrypted, compression is not None)
            self.header = h
            write(os.path.join(self.stage, 'backup-header'), h)
            self.hmac('backup-header')
            self.send('backup-header')
            self.send('backup-header.hmac')

    def hmac(self, rel):
        p = os.path.join(self.stage, rel)
        with open(p, 'rb') as i, open(p + '.hmac', 'wb') as o:
            run(['openssl', 'dgst', '-' + self.alg, '-hmac', P], stdin=i, stdout=o)

    def send(self, rel):                            # SendWorker: tar -cO --posix -C tmpdir FILE
        p = os.path.join(self.stage, rel)
        os.utime(p, (MTIME, MTIME))
        self.out.flush()
        run(['tar', '-cO', '--posix', '-C', self.stage, rel], stdout=self.out)
        os.remove(p)

    def piece(self, base, i, data):
        rel = '%s.%03d' % (base, i)
        write(os.path.join(self.stage, rel), data)
        self.hmac(rel)
        self.send(rel)
        self.send(rel + '.hmac')

    def enc_cmd(self):                              # random salt, "Salted__" header: like Qubes
        return ['openssl', 'enc', '-e', '-aes-256-cbc', '-md', 'md5', '-pass', 'pass:' + P]

    def add(self, path, subdir):
        """backup one file or directory (path ending in '/.') into subdir ('' / 'vm5/' / 'dom0-home/')"""
        base = os.path.basename(path)
        outer = subdir + base
        if self.fmt == 3:
            self._add_v3(path, base, subdir, outer)
        else:
            self._add_v2(path, base, subdir, outer)
        return outer

    def _add_v3(self, path, base, subdir, outer):
        cmd = ['tar', '-Pc', '--sparse', '-f', '-', '-C', os.path.dirname(path)] + \
              ([] if subdir == 'dom0-home/' else ['--dereference']) + \
              ['--xform', 's:^%s:%s\\0:' % (base, subdir)]
        if self.compression:
            cmd.append('--use-compress-program=%s' % self.compression)
        cmd.append(base)
        tar = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        procs = [tar]
        stream = tar.stdout
        if self.encrypted:
            enc = subprocess.Popen(self.enc_cmd(), stdin=tar.stdout, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
            tar.stdout.close()
            procs.append(enc)
            stream = enc.stdout
        # wait_backup_feedback(): new piece when bytes_copied + buffer_size > size_limit
        sizes = []; total = 0; i = 0
        while True:
            buf = bytearray(); eof = False
            while True:
                if len(buf) + V3_BUF > V3_LIMIT:
                    break                                   # "size_limit"
                d = stream.read(V3_BUF)
                if not d:
                    eof = True
                    break
                buf += d
            self.piece(outer, i, bytes(buf))
            sizes.append(len(buf)); total += len(buf); i += 1
            if eof:
                break
        for p in procs:
            if p.wait():
                sys.exit('%s failed for %s' % (p.args[:2], path))
        self.streams.append({'base': outer, 'pieces': i, 'piece_sizes': sizes, 'stream_bytes': total})

    def _add_v2(self, path, base, subdir, outer):
        fifo = os.path.join(self.stage, 'backup_pipe')
        if not os.path.exists(fifo):
            os.mkfifo(fifo)
        cmd = ['tar', '-Pc', '--sparse', '-f', fifo, '--tape-length', str(V2_TAPE_KIB),
               '-C', os.path.dirname(path), '--xform', 's:^%s:%s\\0:' % (base, subdir), base]
        tar = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        sizes = []; vol_sizes = []; i = 0; msgs = b''
        while True:
            with open(fifo, 'rb') as pipe:                  # one open per tape volume
                if self.encrypted:
                    r = quiet(self.enc_cmd(), stdin=pipe, stdout=subprocess.PIPE)
                    data = r.stdout
                elif self.compression:                      # v2: gzip per volume
                    data = run(['gzip'], stdin=pipe, stdout=subprocess.PIPE).stdout
                else:
                    data = pipe.read()
            self.piece(outer, i, data)
            sizes.append(len(data)); i += 1
            # tar asks "Prepare volume #N for 'FIFO' and hit return: " (stderr) or exits
            prompt = b''
            while not prompt.endswith(b'hit return: '):
                c = tar.stderr.read(1)
                if not c:
                    break
                prompt += c
            msgs += prompt
            if not prompt.endswith(b'hit return: '):
                break
            tar.stdin.write(b'\n'); tar.stdin.flush()       # backup_do: "Release the next chunk"
        if tar.wait():
            sys.exit('tar failed for %s: %s' % (path, msgs.decode(errors='replace')))
        self.streams.append({'base': outer, 'pieces': i, 'piece_sizes': sizes, 'stream_bytes': sum(sizes)})

    def finish(self):
        self.out.close()
        for root, dirs, files in os.walk(self.stage):
            left = [f for f in files if f != 'backup_pipe']
            if left:
                sys.exit('stage not empty: %s' % left)
        os.replace(self.partial, self.out_path)

    def members(self):
        out = []
        with tarfile.open(self.out_path, 'r:', ignore_zeros=True) as t:
            for m in t:
                out.append({'name': m.name, 'size': m.size})
        return out

# one qube's data, in R3 backup_prepare order
def qube_files(b, q):
    """q: dict name/qid/cls/srcdir/subdir; returns the manifest file list and adds the data"""
    files = []
    src, sub = q['srcdir'], q['subdir']
    bp = sub.rstrip('/')
    if q['cls'] == 'TemplateVM':
        outer = b.add(src + '/.', sub)                       # whole directory, base name '.'
        files.append({'path': '.', 'archive_name': sub + '.', 'outer_base': outer,
                      'role': 'template-dir', 'type': 'dir'})
        for root, dirs, fs in os.walk(src):
            dirs.sort()
            for n in sorted(dirs + fs):
                p = os.path.join(root, n); rel = os.path.relpath(p, src)
                role = {'root.img': 'volume', 'private.img': 'volume', 'volatile.img': 'volume',
                        'icon.png': 'icon', 'whitelisted-appmenus.list': 'appmenus'}.get(rel, 'config')
                if rel.startswith('apps.templates'):
                    role = 'apps'
                e = xform_target(file_entry(p, rel, sub + './' + rel, outer, role, with_runs=rel.endswith('.img')),
                                 '.', sub)
                if e['type'] == 'symlink' and b.fmt == 3:    # v3 --dereference: stored as a file
                    e = file_entry(os.path.realpath(p), rel, sub + './' + rel, outer, role)
                files.append(e)
        return files
    names = ['private.img', 'icon.png']
    if q['cls'] == 'StandaloneVM':
        names += ['apps', 'kernels']
    names += ['firewall.xml', 'whitelisted-appmenus.list']
    if q['cls'] == 'StandaloneVM':
        names.append('root.img')
    roles = {'private.img': 'volume', 'root.img': 'volume', 'icon.png': 'icon', 'apps': 'apps',
             'kernels': 'kernels', 'firewall.xml': 'firewall', 'whitelisted-appmenus.list': 'appmenus'}
    for n in names:
        p = os.path.join(src, n)
        if not os.path.lexists(p):
            continue
        outer = b.add(p, sub)
        deref = b.fmt == 3
        if os.path.isdir(p):
            files.append(file_entry(p, n, sub + n, outer, roles[n]))
            for c in sorted(os.listdir(p)):
                files.append(file_entry(os.path.join(p, c), n + '/' + c, sub + n + '/' + c, outer, roles[n]))
        else:
            sp = os.path.realpath(p) if deref else p
            files.append(xform_target(file_entry(sp, n, sub + n, outer, roles[n], with_runs=n.endswith('.img')),
                                      n, sub))
    return files

def home_files(b, user, d):
    outer = b.add(d, 'dom0-home/')
    ents = []
    def walk(p, rel):
        st = os.lstat(p)
        path = 'home/%s%s' % (user, '/' + rel if rel else '')
        arch = 'dom0-home/%s%s' % (user, '/' + rel if rel else '')
        e = file_entry(p, path, arch, outer, 'home')
        if e['type'] != 'symlink':
            e['mode'] = '%04o' % (st.st_mode & 0o7777)
        xform_target(e, user, 'dom0-home/')                 # (no such symlink in this home)
        ents.append(e)
        if e['type'] == 'dir':
            for n in sorted(os.listdir(p)):
                walk(os.path.join(p, n), (rel + '/' + n) if rel else n)
    walk(d, '')
    return outer, ents

def build(spec):
    name = spec['file']
    b = Backup(name, spec['format'], spec['encrypted'], spec['compression'], spec['hmac'],
               spec['description'], spec['covers'])
    hide = spec['encrypted']                 # R3 qvm-backup: hide_vm_names = options.encrypt
    vms = []
    for q in spec['qubes']:
        q = dict(q)
        q['in_backup'] = True
        q['srcdir'] = os.path.join(SRC, KIND_DIR[q['cls']], q['name'])
        q['subdir'] = ('vm%d/' % q['qid']) if hide else (KIND_DIR[q['cls']] + '/' + q['name'] + '/')
        q['backup_path'] = q['subdir'].rstrip('/')         # backup_prepare: 'vm%d' / relpath(dir_path)
        q['backup_size'] = disk_usage(q['srcdir'])
        vms.append(q)
    for o in spec['others']:
        # backup_prepare() sets backup_content=False on the qubes it skips but leaves backup_path
        # alone: a qube backed up earlier keeps its stale path (sys-firewall below); a qube never
        # backed up has the default "" (untrusted)
        o = dict(o, in_backup=False, backup_path=o.get('stale_path', ''))
        vms.append(o)
    home = os.path.join(SRC, 'home/user') if spec.get('home') else None
    xml = qubes_xml(vms, disk_usage(home) if home else None)
    xml_path = write(os.path.join(SRC, 'varlibqubes/qubes.xml'), xml)
    os.utime(xml_path, (MTIME, MTIME))
    b.add(xml_path, '')                                    # subdir '' (relative to /var/lib/qubes)
    qubes = []
    # non-templates sorted by name, then templates, then dom0
    order = sorted([q for q in vms if q['in_backup'] and q['cls'] != 'TemplateVM'], key=lambda q: q['name']) + \
        [q for q in vms if q['in_backup'] and q['cls'] == 'TemplateVM']
    for q in order:
        files = qube_files(b, q)
        qubes.append({'name': q['name'], 'class': q['cls'], 'xml_element': ELEMENT[q['cls']], 'qid': q['qid'],
                      'label': q['label'], 'template': q.get('template'), 'backup_path': q['backup_path'],
                      'files': files})
    if home:
        outer, ents = home_files(b, 'user', home)
        qubes.append({'name': 'dom0', 'class': 'AdminVM', 'xml_element': 'QubesAdminVm', 'qid': 0,
                      'label': 'black', 'template': None, 'backup_path': 'dom0-home/user', 'user': 'user',
                      'files': ents})
    b.finish()
    for q in qubes:                                        # pieces per outer base
        for f in q['files']:
            f['chunks'] = next(s['pieces'] for s in b.streams if s['base'] == f['outer_base'])
    e = {'file': name, 'size': os.path.getsize(b.out_path), 'sha256': sha256_file(b.out_path),
         'description': spec['description'], 'covers': spec['covers'],
         'format': spec['format'], 'passphrase': P, 'encrypted': spec['encrypted'],
         'compressed': spec['compression'] is not None, 'compression': spec['compression'],
         'hmac_algorithm': spec['hmac'], 'crypto_algorithm': 'aes-256-cbc',
         'openssl_enc': 'openssl enc -d -aes-256-cbc -md md5 -pass pass:%s' % P if spec['encrypted'] else None}
    if spec['format'] == 3:
        e['pieces'] = {'buffer': V3_BUF, 'limit': V3_LIMIT, 'piece_bytes': (V3_LIMIT // V3_BUF) * V3_BUF,
                       'qubes_buffer': 409600, 'qubes_limit': 104857600}
    else:
        e['tape_length_kib'] = V2_TAPE_KIB
        e['qubes_tape_length_kib'] = 100000
    xb = xml.encode()
    e.update({'header': b.header,
              'qubes_xml': {'size': len(xb), 'sha256': hashlib.sha256(xb).hexdigest(),
                            'pieces': next(s['pieces'] for s in b.streams if s['base'] == 'qubes.xml')},
              'members': b.members(), 'streams': b.streams, 'qubes': qubes,
              'not_in_backup': [{'name': o['name'], 'qid': o['qid'], 'backup_path': o.get('stale_path', '')}
                                for o in spec['others']]})
    if any(s['pieces'] > 1 and s['piece_sizes'][-1] == 0 for s in b.streams):
        e['covers'] = e['covers'] + ['empty-final-piece']      # depends on compressed sizes
    return e

OTHERS = [{'name': 'sys-net', 'qid': 2, 'cls': 'NetVM', 'label': 'red', 'template': 'fedora-23'},
          {'name': 'sys-firewall', 'qid': 3, 'cls': 'ProxyVM', 'label': 'green', 'template': 'fedora-23',
           'stale_path': 'vm3'},
          {'name': 'untrusted', 'qid': 7, 'cls': 'AppVM', 'label': 'red', 'template': 'fedora-23'}]
TPL_OTHER = {'name': 'fedora-23', 'qid': 1, 'cls': 'TemplateVM', 'label': 'black', 'template': None}
WORK_Q = {'name': 'work', 'qid': 5, 'cls': 'AppVM', 'label': 'red', 'template': 'fedora-23'}
WEB_Q = {'name': 'work-web', 'qid': 50, 'cls': 'AppVM', 'label': 'green', 'template': 'fedora-23'}
TPL_Q = dict(TPL_OTHER)
STANDALONE_Q = {'name': 'standalone', 'qid': 8, 'cls': 'StandaloneVM', 'label': 'blue', 'template': None}
BIG_Q = {'name': 'big', 'qid': 12, 'cls': 'AppVM', 'label': 'purple', 'template': 'fedora-23'}

SPECS = [
    {'file': 'v3-enc-gzip.bin', 'format': 3, 'encrypted': True, 'compression': 'gzip', 'hmac': 'SHA512',
     'description': 'R3.2 default qvm-backup -e: AppVMs work (vm5, ext4 private.img, 3+ pieces) and work-web (vm50), '
                    'TemplateVM fedora-23 as a whole directory (vm1/..000), dom0 home; 16 KiB pieces',
     'covers': ['v3', 'encrypted', 'gzip', 'hmac-sha512', 'multi-piece', 'template-dir', 'dom0-home',
                'gnu-old-sparse', 'ext4', 'vm5-vm50-prefix', 'not-in-backup-empty-path', 'icon-dereferenced'],
     'qubes': [WORK_Q, WEB_Q, TPL_Q], 'others': OTHERS, 'home': True},
    {'file': 'v3-plain-bzip2.bin', 'format': 3, 'encrypted': False, 'compression': 'bzip2', 'hmac': 'SHA512',
     'description': 'qvm-backup -z bzip2 without -e (R3 CLI default): names not hidden (appvms/work, appvms/work-web), '
                    'StandaloneVM with apps/ and kernels/ dirs and root.img, dom0 home',
     'covers': ['v3', 'unencrypted', 'bzip2', 'hmac-sha512', 'path-names', 'appvms-work-prefix', 'standalone',
                'apps-dir', 'kernels-dir', 'dom0-home', 'gnu-old-sparse'],
     'qubes': [WORK_Q, WEB_Q, STANDALONE_Q], 'others': [TPL_OTHER] + OTHERS, 'home': True},
    {'file': 'v3-big-sparse.bin', 'format': 3, 'encrypted': True, 'compression': 'gzip', 'hmac': 'SHA512',
     'description': 'AppVM big (vm12) with a 9 GiB sparse private.img (data at 0, 3 GiB, 8 GiB+4 KiB, end): '
                    'GNU tar old sparse with base-256 numbers; encrypted, gzip',
     'covers': ['v3', 'encrypted', 'gzip', 'gnu-old-sparse', 'base256', 'over-8GiB'],
     'qubes': [BIG_Q], 'others': [TPL_OTHER] + OTHERS, 'home': False},
    {'file': 'v3-sha256-xz.bin', 'format': 3, 'encrypted': True, 'compression': 'xz', 'hmac': 'SHA256',
     'description': 'qvm-backup -e -z xz -H SHA256: non-default HMAC algorithm; AppVMs work (vm5) and work-web (vm50)',
     'covers': ['v3', 'encrypted', 'xz', 'hmac-sha256', 'multi-piece', 'vm5-vm50-prefix'],
     'qubes': [WORK_Q, WEB_Q], 'others': [TPL_OTHER] + OTHERS, 'home': False},
    {'file': 'v2-enc-multivolume.bin', 'format': 2, 'encrypted': True, 'compression': None, 'hmac': 'SHA1',
     'description': 'R2-beta format 2, encrypted (not compressed: the writer refused both): GNU multi-volume tar, '
                    '20 KiB tape volumes, each volume encrypted separately; vm5, vm50, dom0 home',
     'covers': ['v2', 'encrypted', 'uncompressed', 'hmac-sha1', 'multi-volume', 'per-volume-encryption',
                'vm5-vm50-prefix', 'dom0-home', 'icon-symlink'],
     'qubes': [WORK_Q, WEB_Q], 'others': [TPL_OTHER] + OTHERS, 'home': True},
    {'file': 'v2-gzip-multivolume.bin', 'format': 2, 'encrypted': False, 'compression': 'gzip', 'hmac': 'SHA1',
     'description': 'R2-beta format 2, unencrypted + compressed: each 20 KiB tape volume gzip-ed separately; '
                    'appvms/work and the TemplateVM directory vm-templates/fedora-23 spanning many volumes',
     'covers': ['v2', 'unencrypted', 'gzip-per-volume', 'hmac-sha1', 'multi-volume', 'template-dir', 'path-names'],
     'qubes': [WORK_Q, TPL_Q], 'others': OTHERS, 'home': False},
]

def main():
    make_sources()
    # v2 icon.png: no --dereference in the v2 writer, so the symlink itself is stored; give it the
    # target a real R2 dom0 had
    parts = []
    for spec in SPECS:
        if ONLY and spec['file'] not in ONLY:
            continue
        if spec['format'] == 2:
            # a 20 KiB-volume multi-volume tar of the 8 MiB ext4 image (1.3 MB of metadata blocks)
            # would be 64 volumes; the v2 fixtures use a synthetic work/private.img (~45 KB of data)
            p = os.path.join(SRC, 'appvms/work/private.img')
            if os.stat(p).st_size == 8 << 20:
                synth(p, 6 << 20, [(0, 12000, 71), (1 << 20, 20000, 72), (5 << 20, 13000, 73)], 'work/private')
                os.utime(p, (MTIME, MTIME))
            for q in spec['qubes']:
                p = os.path.join(SRC, KIND_DIR[q['cls']], q['name'], 'icon.png')
                if os.path.islink(p):
                    os.remove(p); os.symlink('/usr/share/qubes/icons/%s.png' % q['label'], p)
                    os.utime(p, (MTIME, MTIME), follow_symlinks=False)
                    os.utime(os.path.dirname(p), (MTIME, MTIME))
        e = build(spec)
        parts.append(e)
        print('  %-26s %8d bytes, %3d members' % (e['file'], e['size'], len(e['members'])), file=sys.stderr)
    mpath = os.path.join(OUTDIR, 'manifest.json')
    backups = []
    names = [s['file'] for s in SPECS]
    if os.path.exists(mpath):
        for e in json.load(open(mpath)).get('backups', []):
            if e['file'] not in [p['file'] for p in parts] and os.path.exists(os.path.join(OUTDIR, e['file'])):
                backups.append(e)
    backups += parts
    backups.sort(key=lambda e: names.index(e['file']) if e['file'] in names else 999)
    m = {'schema': 1, 'generator': 'tests/make-fixtures-v3.sh', 'tools': json.loads(os.environ['TOOLS']),
         'backups': backups}
    txt = json.dumps(m, ensure_ascii=False, indent=1)
    txt = re.sub(r'\{\n\s+([^{}\[\]]*?)\n\s*\}',
                 lambda mo: '{' + ' '.join(l.strip() for l in mo.group(1).split('\n')) + '}', txt)
    txt = re.sub(r'\[\n\s+([^{}\[\]]*?)\n\s*\]',
                 lambda mo: '[' + ' '.join(l.strip() for l in mo.group(1).split('\n')) + ']', txt)
    with open(mpath, 'w') as f:
        f.write(txt + '\n')

main()
PY

start=$SECONDS
echo "== make-fixtures-v3: building into $OUTDIR" >&2
PYTHONPATH="$HERE" python3 "$WORK/make.py" "$WORK" "$OUTDIR"
echo "== done in $((SECONDS - start)) s; total $(du -sh "$OUTDIR" | cut -f1)" >&2
