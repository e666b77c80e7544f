#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS seconds each (default 60).
# Installs the nightly toolchain (minimal profile) and cargo-fuzz first when they are missing.
#
# The seed corpus in fuzz/corpus/<target>/ is read, never written: what the fuzzer finds is kept
# in a scratch directory (FUZZ_WORK, default a temp dir), so a CI run leaves the tree clean.
# A crash fails the run; its input is saved under fuzz/artifacts/<target>/ (gitignored) and the
# command to reproduce it is printed.
#
# failbackd forbids unsafe code, so what the fuzzer looks for is panics: the default is no
# sanitizer (builds faster, runs ~2-3x more inputs). FUZZ_SANITIZER=address for a deeper run.
#
# Usage: tools/fuzz.sh [target...]        (default: every target)
#        FUZZ_SECONDS=30 tools/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
case "$seconds" in
  '' | *[!0-9]*)
    echo "fuzz.sh: FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
    ;;
esac

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  step "installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi

step "building ${#targets[@]} fuzz targets"
cargo +nightly fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer"

work="${FUZZ_WORK:-$(mktemp -d)}"
failed=()
for target in "${targets[@]}"; do
  step "fuzzing $target for ${seconds}s"
  mkdir -p "$work/$target"
  log="$work/$target.log"
  if cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer "$sanitizer" "$target" "$work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    echo "$target: ${runs:-?} runs, no crash"
  else
    tail -n 60 "$log"
    echo "$target: FAILED (log: $log; reproduce: cargo +nightly fuzz run --sanitizer $sanitizer $target fuzz/artifacts/$target/<file>)"
    failed+=("$target")
  fi
done

echo "fuzz.sh took $(($(date +%s) - started))s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]}" >&2
  exit 1
fi
