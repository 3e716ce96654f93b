"""What the fixture checkers (tests/check-fixtures.sh, tests/check-fixtures-v3.sh) compare a
manual-recipe restore with: the manifest's files (type, size, data runs, sha256, mode, links)
and nothing else in the restored tree. Imported with PYTHONPATH=tests/."""
import hashlib, os, stat

from sparse_extents import extents  # tests/sparse_extents.py


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        for d in iter(lambda: f.read(1 << 22), b''):
            h.update(d)
    return h.hexdigest()


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


def check_files(out, backup, err, expected):
    """Every file the manifest lists for `backup`'s qubes, restored under `out`; adds their
    paths to `expected` and returns how many there are. A file over 1 GiB described by its data
    runs is checked by them (hashing GiBs of holes is slow)."""
    nfiles = 0
    for q in backup['qubes']:
        for ent in q['files']:
            rel = os.path.normpath(ent['archive_name'])
            p = os.path.join(out, rel)
            expected.add(rel)
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
    return nfiles


def check_nothing_else(out, expected, err, ignore=()):
    """Nothing was restored under `out` but `expected` (and the folders that hold it)."""
    for root, dirs, files in os.walk(out):
        for n in dirs + files:
            full = os.path.join(root, n)
            rel = os.path.relpath(full, out)
            if rel in expected or rel in ignore:
                continue
            if os.path.isdir(full) and not os.path.islink(full) and any(e.startswith(rel + '/') for e in expected):
                continue        # vmN/, appvms/, dom0-home/ parents
            err('unexpected restored entry %s' % rel)
