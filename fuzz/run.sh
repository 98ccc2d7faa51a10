#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 20; CI uses the default, run longer by
# hand: `fuzz/run.sh 600`), prints the executions per target and fails on the first crash
# (libFuzzer exits non-zero and leaves the input in fuzz/artifacts/<target>/).
#
# Built without a sanitizer (`--sanitizer none`): the targets are safe Rust, where a bug is a
# panic, which libFuzzer catches by itself; AddressSanitizer would only slow the build and runs.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-20}
targets=(authz_request params rules seeds jwt)

cargo +nightly fuzz build --sanitizer none
mkdir -p corpus
status=0
report=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  # Seed corpora: the committed seeds (fuzz/seeds/, a sample of earlier runs' corpora, also
  # replayed on stable by tests/it/fuzz_replay.rs) and the shipped rules and seeds files.
  case $target in
    rules) cp ../config/authz_rules.yml corpus/rules/shipped.yml ;;
    seeds) cp ../config/seeds.yml corpus/seeds/shipped.yml ;;
  esac
  log=$(mktemp)
  if cargo +nightly fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    result=clean
  else
    result=CRASH
    status=1
    grep -E "panicked|ERROR|Test unit written" "$log" | head -20 >&2
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  report+=("$(printf '%-14s %12s executions in %ss  %s' "$target" "$runs" "$seconds" "$result")")
  rm -f "$log"
done
printf '%s\n' "${report[@]}"
exit $status
