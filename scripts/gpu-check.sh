#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds with --features cuda, checks the decoder on CUDA against
# the transformers fixtures and the CPU (f32 and bf16), checks inference on CUDA (a quantized GGUF
# through candle's CUDA quantized products, budget forcing, batches: tests/cuda_inference.rs), then
# times batch-1 decode of a Qwen2.5-0.5B-shaped bf16 model against PyTorch + transformers on the
# same GPU and reports the fraction of the GPU's memory bandwidth reached. Prints a short table last.
#   bash scripts/gpu-check.sh            (python with torch+transformers: S1_BENCH_PYTHON, default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-target/gpu-check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}"
bash scripts/fetch-test-models.sh
bash scripts/build-cuda.sh 2>&1 | tail -3
echo "== parity and inference on CUDA"
bash scripts/build-cuda.sh test --test model_parity --test cuda_inference -- --nocapture 2>&1 \
  | tee "$out/parity.txt" | grep -E "relative error|test result|panicked"
echo "== decode"
py="${S1_BENCH_PYTHON:-python3}"
./target/release/s1-studio bench gpu-decode --device cuda --python "$py" --json "$out/gpu-decode.json" \
  | tee "$out/decode.txt"
./target/release/s1-studio bench decode --device cuda --which safetensors --python "$py" \
  --new-tokens 256 --repeats 5 --json "$out/decode-cuda-29m.json" | tee -a "$out/decode.txt"
