#!/usr/bin/env bash
# Builds the committed seed corpus (fuzz/corpus/<target>/) from the real-tool fixtures in
# tests/fixtures: outer archives, headers, scrypt containers, member listings, compressed and
# decompressed inner streams, qubes.xml files. Decryption uses the real `scrypt dec` with the
# passphrases of tests/fixtures/made/manifest.json. Needs tar, scrypt, python3 and the
# decompressors (tests/run-all.sh installs them). Seeds are cut to 16 KiB (libFuzzer's input
# size follows the largest seed; a cut stream still holds every header and map).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
FIX=../tests/fixtures
OUT=corpus
CAP=16384
# inputs that once crashed a target (regression-*) are kept, and legacy_formats' seeds too
# (made by hand from the format 3/2 fixtures, see fuzz_targets/legacy_formats.rs)
find "$OUT" -type f ! -name "regression-*" ! -path "$OUT/legacy_formats/*" -delete 2>/dev/null || true
for t in outer_index backup_header scrypt_container chunk_sequence decompress inner_tar qubes_xml; do
  mkdir -p "$OUT/$t"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# seed TARGET NAME [PREFIX-BYTES-IN-OCTAL-ESCAPES] < data
seed() {
  { [ -z "${3:-}" ] || printf "$3"; head -c "$CAP"; } > "$OUT/$1/$2"
}
member() { tar --ignore-zeros -xOf "$1" "$2"; }

# Decrypts chunk $2 of backup $1 (manifest entry gives backup-id and passphrase).
decrypt() {
  local bin=$1 name=$2 id pass
  id=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(next(b["backup_id"] for b in m["backups"] if b["file"]==sys.argv[2]))' "$FIX/made/manifest.json" "$(basename "$bin")")
  pass=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(next(b["passphrase"] for b in m["backups"] if b["file"]==sys.argv[2]))' "$FIX/made/manifest.json" "$(basename "$bin")")
  member "$bin" "$name" > "$tmp/enc"
  QPASS="$id!${name%.enc}!$pass" scrypt dec --passphrase env:QPASS -f "$tmp/enc" "$tmp/dec"
  cat "$tmp/dec"
}

# decompress selectors (fuzz_targets/decompress.rs): even = decode, index = byte / 2
declare -A SEL=([none]='\000' [gzip]='\002' [bzip2]='\004' [xz]='\006' [lzma]='\010' [zstd]='\012')
declare -A UNPACK=([none]=cat [gzip]='gzip -dc' [bzip2]='bzip2 -dc' [xz]='xz -dc' [lzma]='lzma -dc' [zstd]='zstd -dcq')

for bin in "$FIX"/made/{demo,gzip-pax,gzip-gnu,bzip2,xz,lzma,zstd,uncompressed,many-chunks}.bin; do
  b=$(basename "$bin" .bin)
  CAP=40960 seed outer_index "$b-head" < "$bin"
  member "$bin" backup-header | seed backup_header "$b"
  member "$bin" backup-header.hmac | seed scrypt_container "$b-header-hmac" '\000'
  member "$bin" qubes.xml.000.enc | seed scrypt_container "$b-qubes-xml" '\001'
  # member listing, one qube at a time renamed to the target's vm5/ and dom0-home/user
  tar --ignore-zeros -tvf "$bin" | awk '{print $6, $3}' > "$tmp/list"
  for dir in $(grep -o '^vm[0-9]*/' "$tmp/list" | sort -u); do
    grep "^$dir" "$tmp/list" | sed "s#^$dir#vm5/#" | seed chunk_sequence "$b-${dir%/}"
  done
  if grep -q '^dom0-home/' "$tmp/list"; then
    grep '^dom0-home/' "$tmp/list" | sed 's#^dom0-home/[^./]*#dom0-home/user#' | seed chunk_sequence "$b-dom0"
  fi
  grep '^qubes.xml' "$tmp/list" | seed chunk_sequence "$b-qubes-xml"

  comp=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); b=next(b for b in m["backups"] if b["file"]==sys.argv[2]); print(b["compression"] if b["compressed"] else "none")' "$FIX/made/manifest.json" "$b.bin")
  # the first chunk of every file: a compressed stream, and (decompressed) an inner tar
  for name in $(awk '{print $1}' "$tmp/list" | grep '\.000\.enc$' | head -n 6); do
    base=${name%.000.enc}; tag="$b-$(echo "$base" | tr '/' '_')"
    decrypt "$bin" "$name" > "$tmp/stream"
    seed decompress "$tag" "${SEL[$comp]}\\001" < "$tmp/stream"
    (${UNPACK[$comp]} < "$tmp/stream" 2>/dev/null || true) > "$tmp/tar"
    seed inner_tar "$tag" '\000' < "$tmp/tar"
    if [ "$base" = qubes.xml ]; then
      tar -xOf "$tmp/tar" qubes.xml 2>/dev/null | seed qubes_xml "$b" || true
    fi
  done
done
# a gap in the middle of a sparse member (salvage path: byte 0 with the high bit set)
seed inner_tar gzip-pax-gap '\201' < "$OUT/inner_tar/gzip-pax-vm5_private.img"
# round-trip modes: odd selectors compress a plaintext with the writer first
for i in 1 3 5 7 9 11; do
  seed decompress "roundtrip-$i" "\\$(printf %03o "$i")\\007" < "$FIX/firewall-r4-sample.xml"
done
printf 'version=4\nencrypted=True\ncompressed=True\ncompression-filter=gzip\nhmac-algorithm=scrypt\nbackup-id=20240101T120000-4242\n' |
  seed scrypt_container roundtrip '\002\005'
for x in "$FIX"/*.xml "$FIX"/qubes-testsuite/*.qubes.xml; do
  seed qubes_xml "$(basename "$x" .xml)" < "$x"
done
./make-fs-corpus.sh  # fs_image: disk images, in its own script
du -sh "$OUT"
find "$OUT" -type f | wc -l
