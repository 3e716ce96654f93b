# shellcheck shell=bash
# qubes-backup.sh — build Qubes OS backups (format 4) with the REAL tools, byte-for-byte as
# `qvm-backup` (qubes-core-admin `qubes/backup.py`) writes them.  Sourceable bash library.
# Spec: docs FORMAT.md §2–§6 and the recipe of §11.
#
# Usage (after `source tests/qubes-backup.sh`):
#
#   SCRYPT_ARGS="--logN 10 -r 8 -p 1"        # tests only; empty/unset = scrypt's defaults (= Qubes)
#   begin_backup OUT PASSPHRASE BACKUP_ID [COMPRESSION [CHUNK_SIZE]]
#       COMPRESSION: gzip (default) | bzip2 | xz | lzma | zstd | none
#                    ("none" = `qvm-backup --no-compress`: header says compressed=False and
#                     still carries the line compression-filter=gzip, exactly like Qubes)
#       CHUNK_SIZE:  plaintext bytes per chunk, default 104857600 (Qubes' 100 MiB)
#   add_qubes_xml FILE                     # must come first (Qubes emits qubes.xml right after the header)
#   add_volume_pax SUBDIR NAME IMAGE       # LVM-style volume: Qubes tarwriter, PAX GNU sparse 1.0 (§6.3)
#   add_volume_gnu SUBDIR NAME IMAGE       # file/reflink-pool volume: GNU tar old sparse 'S' (§6.4)
#   add_file SUBDIR NAME FILE              # firewall.xml, notes.txt (GNU tar, --dereference)
#   add_empty SUBDIR                       # the zero-length `empty` file of a qube with no data
#   add_dom0_home USER DIR                 # dom0 home (GNU tar WITHOUT --dereference) -> dom0-home/USER
#   end_backup                             # moves the finished file to OUT, removes the temp dir
#
#   Optional: QB_JOBS=N parallel scrypt processes for files with many chunks (default 2).
#   Optional: QB_LOG=FILE appends one line "BASE CHUNKS STREAM_BYTES" per emitted file.
#
#   SUBDIR is the qube's backup-path, e.g. "vm5/" (a missing trailing slash is added).
#   Members are appended in call order; Qubes' order is: qubes.xml, then per qube root.img,
#   private.img, firewall.xml, notes.txt; dom0 home last.
#
# Faithfulness notes (what is identical to Qubes and what is merely equivalent):
#   * backup-header bytes, key order and `backup-header.hmac` (= scrypt enc of the header with
#     passphrase "backup-header!P") are identical.
#   * Inner commands are Qubes' argv: `tar -Pc --sparse -C DIR [--dereference]
#     [--use-compress-program=F] --xform=s:^BASE:SUBDIR\0: BASE`, or the tarwriter (Python `tarfile`
#     PAX_FORMAT, GNU sparse 1.0, name `<dir>/GNUSparseFile.<pid>/<base>`, 1024 zero bytes, no record
#     padding) which we re-implement below with the same `tarfile` calls.  The sparse map is the
#     tarwriter's (maximal runs of non-zero 512-byte blocks, "(size,0)" appended when the file ends in
#     zeros); we only skip reading holes (SEEK_DATA/SEEK_HOLE), which cannot change the result
#     because holes read as zeros.
#   * Chunking: Qubes feeds `scrypt enc - chunk.NNN.enc` up to CHUNK_SIZE bytes at a time; we split to
#     files first (scrypt output does not depend on how the input arrives).  Names are "%03d" and grow
#     to 4+ digits past 999 (`.1000`).  GNU split cannot name files like that (a fixed
#     --suffix-length=3 stops at 999), so we split with 6-digit suffixes and rename.  The Qubes quirk
#     is reproduced: an empty stream gives one empty `.000`, and a stream that is an exact positive
#     multiple of CHUNK_SIZE gets an extra EMPTY final chunk (128-byte .enc).
#   * scrypt gets the passphrase via `--passphrase env:QB_SCRYPT_PASS` (scrypt >= 1.3); Qubes types
#     the same bytes into a pty.  The chunk passphrase is "BACKUP_ID!<path>.NNN!P".
#   * Each .enc piece is appended with its own `tar -cO --posix -C STAGE NAME`, exactly like
#     Qubes' SendWorker.  Only uid/gid/owner names and timestamps differ from a real dom0 (they come
#     from this machine), which is also true of any two real backups.

# The caller decides about `set -euo pipefail`; every function here is written to work under it.

qb__die() { echo "qubes-backup.sh: $*" >&2; return 1; }

qb__cleanup() {                 # also removes an unfinished OUT.partial
    if [[ -n ${QB_TMP:-} && -d ${QB_TMP:-} ]]; then rm -rf -- "$QB_TMP"; fi
    if [[ -n ${QB_PARTIAL:-} && -f ${QB_PARTIAL:-} ]]; then rm -f -- "$QB_PARTIAL"; fi
    QB_TMP= QB_PARTIAL=
}

# begin_backup OUT PASSPHRASE BACKUP_ID [COMPRESSION [CHUNK_SIZE]]
begin_backup() {
    [[ $# -ge 3 ]] || { qb__die "usage: begin_backup OUT PASSPHRASE BACKUP_ID [COMPRESSION [CHUNK_SIZE]]"; return 1; }
    local out=$1
    QB_PASS=$2
    QB_ID=$3
    QB_COMPRESSION=${4:-gzip}
    QB_CHUNK_SIZE=${5:-104857600}
    case $QB_COMPRESSION in
        gzip|bzip2|xz|lzma|zstd) QB_COMPRESSED=True; QB_FILTER=$QB_COMPRESSION ;;
        none|no|uncompressed|False) QB_COMPRESSED=False; QB_FILTER=gzip ;;   # Qubes keeps the default filter name
        *) qb__die "unknown compression '$QB_COMPRESSION'"; return 1 ;;
    esac
    [[ $QB_CHUNK_SIZE =~ ^[1-9][0-9]*$ ]] || { qb__die "bad chunk size '$QB_CHUNK_SIZE'"; return 1; }
    [[ $QB_ID =~ ^[A-Za-z0-9][A-Za-z0-9-]*$ ]] || { qb__die "bad backup-id '$QB_ID'"; return 1; }
    # shellcheck disable=SC2206
    QB_SCRYPT=(scrypt enc ${SCRYPT_ARGS:-} --passphrase env:QB_SCRYPT_PASS)

    qb__cleanup
    QB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/qubes-backup.XXXXXX")
    [[ -n $(trap -p EXIT) ]] || trap qb__cleanup EXIT
    QB_ST=$QB_TMP/stage          # Qubes' tmpdir: chunk files live here, outer tar runs with -C here
    mkdir -p "$QB_ST" "$QB_TMP/src"
    QB_OUT=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
    QB_PARTIAL=$QB_OUT.partial
    rm -f -- "$QB_OUT" "$QB_PARTIAL"
    : > "$QB_PARTIAL"
    qb__write_tarwriter "$QB_TMP/tarwriter.py"

    # 1. backup-header (BackupHeader.save: version first, then the header_keys order, None skipped)
    printf 'version=4\nencrypted=True\ncompressed=%s\ncompression-filter=%s\nhmac-algorithm=scrypt\nbackup-id=%s\n' \
        "$QB_COMPRESSED" "$QB_FILTER" "$QB_ID" > "$QB_ST/backup-header"
    QB_SCRYPT_PASS="backup-header!$QB_PASS" "${QB_SCRYPT[@]}" "$QB_ST/backup-header" "$QB_ST/backup-header.hmac"
    qb__send backup-header
    qb__send backup-header.hmac
}

# SendWorker: one `tar -cO --posix` per file, appended to the target; then the file is deleted.
qb__send() {
    tar -cO --posix -C "$QB_ST" "$1" >> "$QB_PARTIAL"
    rm -f -- "$QB_ST/$1"
}

# qb__emit BASE  — stdin = inner (compressed) stream of one file; BASE = "vm5/private.img" etc.
qb__emit() {
    local base=$1 pfx piece rel n=0 total=0 i
    mkdir -p "$QB_ST/$(dirname "$base")"
    pfx="$QB_ST/$base.split."
    split --numeric-suffixes --suffix-length=6 --bytes="$QB_CHUNK_SIZE" - "$pfx"
    for piece in "$pfx"[0-9]*; do              # fixed-width suffixes: glob order == numeric order
        [[ -e $piece ]] || continue
        printf -v rel '%s.%03d' "$base" "$n"
        mv -- "$piece" "$QB_ST/$rel"
        n=$((n + 1))
    done
    # every piece but the last holds exactly CHUNK_SIZE bytes
    if (( n > 0 )); then total=$(( (n - 1) * QB_CHUNK_SIZE + $(stat -c %s "$QB_ST/$rel") )); fi
    # handle_streams() quirk: an exact multiple of the chunk size yields one more (empty) chunk;
    # an empty stream yields one empty chunk .000
    if (( n == 0 || total % QB_CHUNK_SIZE == 0 )); then
        printf -v rel '%s.%03d' "$base" "$n"
        : > "$QB_ST/$rel"
        n=$((n + 1))
    fi
    # scrypt every piece (independent → run QB_JOBS at a time; output does not depend on it),
    # then append them in order, one outer tar each
    local -a rels=()
    for ((i = 0; i < n; i++)); do printf -v rel '%s.%03d' "$base" "$i"; rels+=("$rel"); done
    if (( n > 4 && ${QB_JOBS:-2} > 1 )); then
        printf '%s\0' "${rels[@]}" | QB_ID=$QB_ID QB_PASS=$QB_PASS QB_ST=$QB_ST QB_SCRYPT_STR="${QB_SCRYPT[*]}" \
            xargs -0 -n 16 -P "${QB_JOBS:-2}" bash -c 'set -e; for rel; do
                QB_SCRYPT_PASS="$QB_ID!$rel!$QB_PASS" $QB_SCRYPT_STR "$QB_ST/$rel" "$QB_ST/$rel.enc"
                rm -f -- "$QB_ST/$rel"; done' qb-scrypt
    else
        for rel in "${rels[@]}"; do
            QB_SCRYPT_PASS="$QB_ID!$rel!$QB_PASS" "${QB_SCRYPT[@]}" "$QB_ST/$rel" "$QB_ST/$rel.enc"
            rm -f -- "$QB_ST/$rel"
        done
    fi
    for rel in "${rels[@]}"; do qb__send "$rel.enc"; done
    # optional log for callers (the function runs in a pipeline subshell): "BASE CHUNKS STREAM_BYTES"
    if [[ -n ${QB_LOG:-} ]]; then printf '%s %d %d\n' "$base" "$n" "$total" >> "$QB_LOG"; fi
}

qb__subdir() { local s=$1; [[ -z $s || $s == */ ]] || s+=/; printf '%s' "$s"; }

# Run Qubes' GNU tar command line for DIR/BASE with archive prefix SUBDIR, emit as SUBDIR+NAME.
# $4 = 1 to add --dereference (everything except dom0-home/)
qb__gnu_tar() {
    local dir=$1 base=$2 subdir=$3 deref=$4 name=$5
    local -a cmd=(tar -Pc --sparse -C "$dir")
    (( deref )) && cmd+=(--dereference)
    cmd+=("--xform=s:^$base:$subdir\\0:" "$base")
    if [[ $QB_COMPRESSED == True ]]; then       # tar_cmdline.insert(-2, ...)
        cmd=("${cmd[@]:0:${#cmd[@]}-2}" "--use-compress-program=$QB_FILTER" "${cmd[@]: -2}")
    fi
    "${cmd[@]}" | qb__emit "$subdir$name"
}

# Give FILE the basename NAME without copying it (a symlink; GNU tar runs with --dereference).
# Prints the directory to use with `tar -C`.  (Runs inside $(...): no global state, explicit errors.)
qb__named() {
    local name=$1 file=$2 d
    if [[ $(basename "$file") == "$name" ]]; then
        (cd "$(dirname "$file")" && pwd) || return 1
        return
    fi
    d=$(mktemp -d "$QB_TMP/src/link.XXXXXX") || return 1
    ln -s "$(cd "$(dirname "$file")" && pwd)/$(basename "$file")" "$d/$name" || return 1
    printf '%s' "$d"
}

add_qubes_xml() {
    local f=$1
    [[ -f $f ]] || { qb__die "add_qubes_xml: no such file $f"; return 1; }
    mkdir -p "$QB_TMP/xml"
    cp -- "$f" "$QB_TMP/xml/qubes.xml"         # backup_do copies the store to tmpdir/qubes.xml
    qb__gnu_tar "$QB_TMP/xml" qubes.xml "" 1 qubes.xml
}

add_volume_pax() {
    local subdir name=$2 img=$3
    subdir=$(qb__subdir "$1")
    [[ -f $img || -b $img ]] || { qb__die "add_volume_pax: no such image $img"; return 1; }
    local -a cmd=(python3 "$QB_TMP/tarwriter.py" "--override-name=$subdir$name" "$img")
    if [[ $QB_COMPRESSED == True ]]; then
        cmd=("${cmd[@]:0:${#cmd[@]}-2}" "--use-compress-program=$QB_FILTER" "${cmd[@]: -2}")
    fi
    "${cmd[@]}" | qb__emit "$subdir$name"
}

add_volume_gnu() {
    local subdir name=$2 img=$3 dir
    subdir=$(qb__subdir "$1")
    [[ -f $img ]] || { qb__die "add_volume_gnu: no such image $img"; return 1; }
    dir=$(qb__named "$name" "$img") || return 1
    qb__gnu_tar "$dir" "$name" "$subdir" 1 "$name"
}

add_file() {
    local subdir name=$2 f=$3 dir
    subdir=$(qb__subdir "$1")
    [[ -f $f ]] || { qb__die "add_file: no such file $f"; return 1; }
    dir=$(qb__named "$name" "$f") || return 1
    qb__gnu_tar "$dir" "$name" "$subdir" 1 "$name"
}

add_empty() {
    local subdir
    subdir=$(qb__subdir "$1")
    mkdir -p "$QB_TMP/empty"
    : > "$QB_TMP/empty/empty"                   # /var/run/qubes/empty
    qb__gnu_tar "$QB_TMP/empty" empty "$subdir" 1 empty
}

add_dom0_home() {
    local user=$1 dir=$2 parent
    [[ -d $dir ]] || { qb__die "add_dom0_home: no such directory $dir"; return 1; }
    if [[ $(basename "$dir") == "$user" ]]; then
        parent=$(cd "$(dirname "$dir")" && pwd)
    else
        parent=$QB_TMP/home
        rm -rf -- "$parent"; mkdir -p "$parent"
        cp -a -- "$dir" "$parent/$user"
    fi
    qb__gnu_tar "$parent" "$user" "dom0-home/" 0 "$user"
}

end_backup() {
    [[ -n ${QB_PARTIAL:-} && -f $QB_PARTIAL ]] || { qb__die "end_backup without begin_backup"; return 1; }
    mv -f -- "$QB_PARTIAL" "$QB_OUT"
    QB_PARTIAL=
    qb__cleanup
}

# Qubes' tarwriter (core-admin qubes/tarwriter.py, R4.0+), re-implemented with the same Python
# `tarfile` calls so that the output bytes are the same.
qb__write_tarwriter() {
    cat > "$1" <<'PY'
import argparse, errno, io, os, subprocess, sys, tarfile

BUF_SIZE = 409600
BLK = tarfile.BLOCKSIZE


def data_extents(f, size):
    """[start, end) ranges that may hold data (holes read as zeros and are skipped)."""
    fd = f.fileno()
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    return
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            yield start, end
            pos = end
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise
        if pos < size:                       # no SEEK_DATA support: scan everything
            yield pos, size


def get_sparse_map(f):
    """Maximal runs of non-zero 512-byte blocks, exactly as tarwriter.get_sparse_map; a final
    (size, 0) entry when the file ends in zeros.  A partial last block never compares equal to
    the 512-byte zero block there, so it always counts as data; the same here."""
    size = os.fstat(f.fileno()).st_size
    zero = bytes(BLK)
    runs = []                                # [start, end)

    def mark(off, end):
        if runs and runs[-1][1] == off:
            runs[-1][1] = end
        else:
            runs.append([off, end])

    last_scanned = 0
    for s, e in data_extents(f, size):
        s = s - s % BLK
        e = min(size, -(-e // BLK) * BLK)
        if s < last_scanned:
            s = last_scanned
        f.seek(s)
        off = s
        while off < e:
            buf = f.read(min(BUF_SIZE, e - off))
            if not buf:
                break
            for i in range(0, len(buf), BLK):
                blk = buf[i:i + BLK]
                if blk != zero:
                    mark(off + i, off + i + len(blk))
            off += len(buf)
        last_scanned = off
    if size % BLK and last_scanned < size:   # partial tail block inside a hole
        mark(size - size % BLK, size)
    smap = [(a, b - a) for a, b in runs]
    if not smap or smap[-1][0] + smap[-1][1] != size:
        smap.append((size, 0))
    return smap


class TarSparseInfo(tarfile.TarInfo):
    def __init__(self, name, sparsemap):
        super().__init__(name)
        self.type = tarfile.REGTYPE
        self.sparsemap = sparsemap
        txt = str(len(sparsemap)) + '\n' + ''.join('{}\n{}\n'.format(*e) for e in sparsemap)
        if len(txt) % BLK:
            txt += '\0' * (BLK - len(txt) % BLK)
        self.sparsemap_buf = txt.encode()
        self.size = sum(e[1] for e in sparsemap) + len(self.sparsemap_buf)
        self.pax_headers['GNU.sparse.major'] = '1'
        self.pax_headers['GNU.sparse.minor'] = '0'
        self.pax_headers['GNU.sparse.name'] = name
        self.pax_headers['GNU.sparse.realsize'] = str(sparsemap[-1][0] + sparsemap[-1][1])
        self.name = '{}/GNUSparseFile.{}/{}'.format(
            os.path.dirname(name), os.getpid(), os.path.basename(name))

    def tobuf(self, format=tarfile.PAX_FORMAT, encoding=tarfile.ENCODING, errors="strict"):
        return super().tobuf(format, encoding, errors) + self.sparsemap_buf


def copy_sparse_data(inp, out, smap):
    for off, left in smap:
        inp.seek(off)
        while left:
            buf = inp.read(min(BUF_SIZE, left))
            if not buf:
                raise Exception('premature EOF')
            out.write(buf)
            left -= len(buf)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--override-name', dest='override_name')
    p.add_argument('--use-compress-program', dest='use_compress_program', default=None)
    p.add_argument('input_file')
    p.add_argument('output_file', default='-', nargs='?')
    a = p.parse_args()
    compress = None
    with io.open(a.input_file, 'rb') as inp:
        smap = get_sparse_map(inp)
        info = TarSparseInfo(a.override_name or a.input_file, smap)
        with io.open('/dev/stdout' if a.output_file == '-' else a.output_file, 'wb') as output:
            if a.use_compress_program:
                compress = subprocess.Popen([a.use_compress_program],
                                            stdin=subprocess.PIPE, stdout=output)
                output = compress.stdin
            output.write(info.tobuf(tarfile.PAX_FORMAT))
            copy_sparse_data(inp, output, smap)
            output.write(b'\0' * 512)
            output.write(b'\0' * 512)
    if compress is not None:
        compress.stdin.close()
        compress.wait()
        return compress.returncode
    return 0


if __name__ == '__main__':
    sys.exit(main())
PY
}
