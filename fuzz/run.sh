#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30), starting from the committed seed
# corpus (fuzz/corpus/<target>, read only: new inputs go to a scratch folder). Fails on the
# first crash, leak, timeout or out-of-memory, leaving the input in fuzz/artifacts/<target>/.
# The random seed is fixed (FUZZ_SEED, default 1) so a CI run can be reproduced exactly;
# longer local campaigns should vary it.
# Prints executions and coverage per target. Stable toolchain: RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz use the nightly-only sanitizer flags. FUZZ_SANITIZER=none skips AddressSanitizer.
#   fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
secs=${1:-30}
shift || true
export RUSTC_BOOTSTRAP=1
# its own build folder (sanitizer flags would otherwise thrash the main one)
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
sanitizer=${FUZZ_SANITIZER:-address}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build --sanitizer "$sanitizer"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf '%-18s %12s %10s %8s %8s\n' target execs exec/s cov ft > "$scratch/stats"
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "corpus/$t"
  echo "== fuzz $t for $secs s" >&2
  if ! cargo fuzz run --sanitizer "$sanitizer" "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$secs" -seed="${FUZZ_SEED:-1}" -timeout=20 -rss_limit_mb=2560 -malloc_limit_mb=2560 \
      -print_final_stats=1 > "$scratch/$t.log" 2>&1; then
    tail -n 60 "$scratch/$t.log" >&2
    echo "fuzz/run.sh: $t crashed; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$scratch/$t.log")
  last=$(grep -E '^#[0-9]+' "$scratch/$t.log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  printf '%-18s %12s %10s %8s %8s\n' "$t" "$execs" "$rate" "$cov" "$ft" >> "$scratch/stats"
done
cat "$scratch/stats"
echo "fuzz/run.sh: no crash in ${#targets[@]} targets × $secs s"
