#!/usr/bin/env bash
# Prints the path of the test Python, making it first where needed: S1_PYTHON if set, else python3
# if it has everything, else target/pyenv, a venv made here from PyPI (about 6 GB with torch's CUDA
# libraries). What the tests use it for: `datasets` (tests/curate_cli.rs loads the curation
# export), `openai` (tests/serve_*.rs drive `s1-studio serve` with the real client), and the
# engines an exported run folder trains with (tests/train_export.rs, gui_train_export.rs,
# train_slurm.rs): torch (torchrun beside the python), TRL 0.12.0 on transformers 4.46.1 as s1
# pins them, accelerate, and Ray's head and Jobs API; llama.cpp's server (llama-cpp-python, built
# from its source package where no wheel fits: a few minutes once) for tests/eval_endpoint.rs.
# scripts/test.sh runs it; .ci/run starts it at the beginning, beside the lints, since it is
# mostly downloading.
set -euo pipefail
cd "$(dirname "$0")/.."
py_pins=("datasets==3.1.0" "openai>=1" "torch==2.15.0" "transformers==4.46.1" "trl==0.12.0"
  "accelerate==1.0.1" "ray[default]==2.60.0" "llama-cpp-python[server]==0.3.16")
py_check="import datasets, openai, torch, accelerate, ray, aiohttp, transformers, trl, llama_cpp.server, uvicorn, sse_starlette
assert transformers.__version__ == '4.46.1' and trl.__version__ == '0.12.0' and ray.__version__ == '2.60.0'"
if [ -n "${S1_PYTHON:-}" ]; then
  echo "$S1_PYTHON"
elif python3 -c "$py_check" 2>/dev/null; then
  echo python3
else
  [ -x target/pyenv/bin/python ] || python3 -m venv target/pyenv >&2
  if ! target/pyenv/bin/python -c "$py_check" 2>/dev/null; then
    target/pyenv/bin/pip install -q "${py_pins[@]}" >&2
    target/pyenv/bin/python -c "$py_check" >&2 || {
      echo "target/pyenv lacks what the tests need (see above)" >&2
      exit 1
    }
  fi
  echo "$PWD/target/pyenv/bin/python"
fi
