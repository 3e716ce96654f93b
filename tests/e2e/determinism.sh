#!/usr/bin/env bash
# determinism.sh — two builds of the same sources must give a byte-identical page.
#   Build A: ./build.sh in this checkout (its usual target dir; cheap when already built).
#   Build B: a copy of the same sources (git's tracked + untracked-but-not-ignored files) at a
#            DIFFERENT path, built with a DIFFERENT, fresh cargo target dir.
# Compares dist/qubes-rescue.html and its .sha256. Exit 0 iff identical.
#   QR_DET_TARGET=DIR   reuse DIR as build B's target dir (default: a fresh temp dir); the copy
#                       then lives in DIR.src (a stable path, so cargo's cache stays valid)
set -euo pipefail
E2E=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$E2E/../.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qr-determinism.XXXXXX")
trap 'rm -rf -- "$TMP"' EXIT

echo "determinism: build A in $ROOT" >&2
t0=$SECONDS
(cd "$ROOT" && ./build.sh >/dev/null)
A=$(sha256sum < "$ROOT/dist/qubes-rescue.html" | cut -d' ' -f1)
cp "$ROOT/dist/qubes-rescue.html" "$TMP/a.html"
cp "$ROOT/dist/qubes-rescue.html.sha256" "$TMP/a.html.sha256"   # (someone may rebuild $ROOT meanwhile)
echo "determinism: build A done in $((SECONDS - t0)) s: $A" >&2

# With QR_DET_TARGET the copy sits at a stable path beside it, so that cargo can reuse that target
# dir (the build remaps the source path, so a new path means new RUSTFLAGS and a full rebuild).
if [ -n "${QR_DET_TARGET:-}" ]; then COPY=$QR_DET_TARGET.src/qubes-rescue-copy; else COPY=$TMP/elsewhere/qubes-rescue-copy; fi
rm -rf -- "$COPY"
mkdir -p "$COPY"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
   | tar --null -T - -cf -) | tar -xf - -C "$COPY"
BT=${QR_DET_TARGET:-$TMP/target-b}
echo "determinism: build B in $COPY (target dir $BT)" >&2
t1=$SECONDS
(cd "$COPY" && CARGO_TARGET_DIR=$BT ./build.sh >/dev/null)
B=$(sha256sum < "$COPY/dist/qubes-rescue.html" | cut -d' ' -f1)
echo "determinism: build B done in $((SECONDS - t1)) s: $B" >&2

if [ "$A" != "$B" ]; then
  echo "determinism: FAIL: the two builds differ ($A vs $B)" >&2
  cmp "$TMP/a.html" "$COPY/dist/qubes-rescue.html" | head -3 >&2 || true
  exit 1
fi
if ! cmp -s "$TMP/a.html.sha256" "$COPY/dist/qubes-rescue.html.sha256" || [ "$(cut -d' ' -f1 "$TMP/a.html.sha256")" != "$A" ]; then
  echo "determinism: FAIL: dist/qubes-rescue.html.sha256 differs between the builds or does not match the page" >&2
  cat "$TMP/a.html.sha256" "$COPY/dist/qubes-rescue.html.sha256" >&2
  exit 1
fi
echo "determinism: OK, both builds are $A" >&2
