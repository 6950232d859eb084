#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds with --features cuda, checks the decoder on CUDA against
# the transformers fixtures and the CPU (f32 and bf16), and times batch-1 decode against
# transformers/PyTorch on the same GPU. Prints a short table last.
#   bash scripts/gpu-check.sh            (python with torch+transformers: S1_BENCH_PYTHON, default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-target/gpu-check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}"
bash scripts/build-cuda.sh 2>&1 | tail -3
echo "== parity on CUDA"
bash scripts/build-cuda.sh test --test model_parity -- --nocapture 2>&1 | tee "$out/parity.txt" | grep -E "relative error|test result"
echo "== decode"
py="${S1_BENCH_PYTHON:-python3}"
for dev in cuda cpu; do
  ./target/release/s1-studio bench decode --device "$dev" --which safetensors --python "$py" \
    --new-tokens 256 --repeats 5 --json "$out/decode-$dev.json" | tee -a "$out/decode.txt"
done
