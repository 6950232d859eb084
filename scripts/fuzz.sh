#!/usr/bin/env bash
# Builds every fuzz target once (nightly, cargo-fuzz) and runs each for a bounded time over the
# corpus seeded from the fixtures, without a sanitizer (`-s none`: what the targets look for is a
# panic, abort, hang or runaway allocation, which need none, and the ASan build takes about twice
# as long); exits non-zero on the first crash, timeout or OOM
# (libFuzzer writes the input to fuzz/artifacts/<target>/).
# Usage: bash scripts/fuzz.sh [seconds per target, default 60] [targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf safetensors config_json tokenizer chat_template rows grade)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
bash scripts/fuzz_seeds.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/fuzz}"
start=$(date +%s)
cargo +nightly fuzz build -O --debug-assertions -s none
echo "fuzz build: $(( $(date +%s) - start )) s"
total=0
for t in "${targets[@]}"; do
  log=$(mktemp)
  # -timeout: one input may run 10 s; -rss_limit_mb: a hostile input may not take more memory.
  if ! cargo +nightly fuzz run -O --debug-assertions -s none "$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"; echo "fuzz target $t failed" >&2; exit 1
  fi
  n=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  echo "fuzz $t: $n executions in ${secs} s, no crash"
  total=$((total + n))
done
echo "fuzz total: $total executions, $(( $(date +%s) - start )) s"
