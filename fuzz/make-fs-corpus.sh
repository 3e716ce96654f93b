#!/usr/bin/env bash
# Seeds for the fs_image target (fuzz/fuzz_targets/fs_image.rs): small ext2/ext4 images made by
# `mke2fs -d` (1 KiB and 4 KiB blocks, with and without a journal and metadata checksums, an
# htree folder, symlinks, a hard link, a fifo, a sparse file), a GPT disk (sgdisk) and an MBR
# disk holding one of them, and a tar of a dom0 home. Each is stored in the target's sparse run
# encoding (only non-zero 512-byte blocks), so the whole set stays small. Called by
# make-corpus.sh; runs alone too. Needs mke2fs, sgdisk, tar, python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
OUT=corpus/fs_image
mkdir -p "$OUT"
find "$OUT" -type f ! -name "regression-*" -delete
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# fixed UUIDs, hash seed and clock (mke2fs still varies a few bytes between runs)
export E2FSPROGS_FAKE_TIME=1700000000
UUID=6b1f2a8e-0c4d-4e5f-9a7b-123456789abc

# encode MODE IMAGE NAME: [mode][size u32][runs of (offset u32, len u16, bytes)]
encode() {
  python3 - "$1" "$2" "$OUT/$3" <<'PY'
import struct, sys
mode, src, dst = int(sys.argv[1]), sys.argv[2], sys.argv[3]
data = open(src, 'rb').read()
out = bytearray([mode]) + struct.pack('<I', len(data))
pos = 0
while pos < len(data):
    if not any(data[pos:pos + 512]):
        pos += 512
        continue
    end = pos
    while end < len(data) and end - pos < 127 * 512 and any(data[end:end + 512]):
        end += 512
    end = min(end, len(data))
    out += struct.pack('<IH', pos, end - pos) + data[pos:end]
    pos = end
open(dst, 'wb').write(out)
PY
}

# a small tree with every kind of entry the browser handles
tree=$tmp/tree
mkdir -p "$tree/home/user/Documents" "$tree/home/user/a/b/c/d/e" "$tree/many"
printf 'hello\n' > "$tree/home/user/Documents/a.txt"
python3 -c "import random,sys; random.seed(1); sys.stdout.buffer.write(random.randbytes(20000))" > "$tree/home/user/Documents/big.bin"
truncate -s 300000 "$tree/home/user/sparse"; printf 'end' >> "$tree/home/user/sparse"
ln "$tree/home/user/Documents/a.txt" "$tree/home/user/hard"
ln -s Documents/a.txt "$tree/home/user/rel-link"
ln -s /home/user/a/b "$tree/home/user/abs-link"
ln -s loop "$tree/home/user/loop"
ln -s "$(printf 'x%.0s' $(seq 200))" "$tree/home/user/long-link"   # a target past the inode's 60 bytes
mkfifo "$tree/home/user/fifo"
printf deep > "$tree/home/user/a/b/c/d/e/f"
for i in $(seq 1 120); do : > "$tree/many/entry-with-a-longish-name-$i"; done   # an htree folder at 1 KiB blocks
find "$tree" -exec touch -h -d @1700000000 {} +

mk() { # mk IMAGE SIZE-KIB mke2fs-options...
  local img=$1 kib=$2; shift 2
  rm -f "$img"
  mke2fs -q -F -N 256 -U "$UUID" -E hash_seed=$UUID -d "$tree" "$@" "$img" "${kib}k"
}
mk "$tmp/ext4-1k.img" 768 -t ext4 -b 1024 -O ^has_journal
encode 0 "$tmp/ext4-1k.img" ext4-1k
mk "$tmp/ext4-1k-nocsum.img" 768 -t ext4 -b 1024 -O ^has_journal,^metadata_csum
encode 0 "$tmp/ext4-1k-nocsum.img" ext4-1k-nocsum
mk "$tmp/ext4-journal.img" 4096 -t ext4 -b 1024 -J size=1
encode 0 "$tmp/ext4-journal.img" ext4-journal
mk "$tmp/ext4-4k.img" 1024 -t ext4 -b 4096 -O ^has_journal
encode 0 "$tmp/ext4-4k.img" ext4-4k
mk "$tmp/ext2.img" 768 -t ext2 -b 1024
encode 0 "$tmp/ext2.img" ext2

# GPT: one Linux filesystem partition at 64 KiB holding the 1 KiB ext4; plus a second, empty one
gpt=$tmp/gpt.img
truncate -s 1152k "$gpt"
sgdisk -a 1 -U "$UUID" -n 1:128:+768K -t 1:8300 -c 1:root -u 1:${UUID%c}d -n 2:0:0 -t 2:ef00 -u 2:${UUID%c}e "$gpt" >/dev/null
dd if="$tmp/ext4-1k-nocsum.img" of="$gpt" bs=1024 seek=64 conv=notrunc status=none
encode 0 "$gpt" gpt-ext4
encode 2 "$gpt" gpt-ext4-partition-2

# MBR: one type 0x83 partition at sector 2 holding the ext2 image
mbr=$tmp/mbr.img
truncate -s 769k "$mbr"
dd if="$tmp/ext2.img" of="$mbr" bs=512 seek=2 conv=notrunc status=none
python3 - "$mbr" <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
f.seek(446)
f.write(struct.pack('<B3sB3sII', 0, b'\0\0\0', 0x83, b'\0\0\0', 2, 768 * 2))
f.seek(510)
f.write(b'\x55\xaa')
PY
encode 0 "$mbr" mbr-ext2

# dom0 home as the page saves it (mode 0x80): GNU tar, long names, links, a sparse file
mkdir -p "$tmp/home"
cp -a "$tree/home/user" "$tmp/home/user"
rm "$tmp/home/user/fifo"
mkdir -p "$tmp/home/user/$(printf 'n%.0s' $(seq 120))"
tar -c --sparse --owner=0 --group=0 --mtime=@1700000000 -C "$tmp/home" --xform='s:^user:dom0-home/user:' user > "$tmp/home.tar"
encode 128 "$tmp/home.tar" home-tar

du -sh "$OUT"
