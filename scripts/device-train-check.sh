#!/usr/bin/env bash
# One device-machine run for the trainer on CUDA (see .library/device): gradient parity against
# the transformers fixtures in f32 and bf16, a short bf16 training run through the CLI whose
# checkpoint transformers loads, then `bench train` (ours vs PyTorch, bf16 and f32) on the 29.4M
# model and on Qwen2.5-0.5B's shape, with MFU. Expects target/devx/ (carried) with the stripped
# s1-studio binary built by `S1_CUDA_PROFILE=ci bash scripts/build-cuda.sh build --bin s1-studio`
# and the Qwen tokenizer.json, both xz-compressed (the carry limit is 64 MiB), plus
# tokenizer_config.json and rows.jsonl (s1K-format rows). Results go to $OUT (or /tmp/out).
set -u
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
C=/tmp/devcarry
mkdir -p $C
cp target/devx/rows.jsonl target/devx/tokenizer_config.json $C/
for f in s1-studio tokenizer.json; do
  xz -dc target/devx/$f.xz > $C/$f 2>/dev/null || python3 -c "import lzma,sys; sys.stdout.buffer.write(lzma.open('target/devx/$f.xz').read())" > $C/$f
done
BIN=$C/s1-studio
chmod +x "$BIN"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv | tee "$OUT/gpu.txt"
# cuBLAS, cuRAND and NVRTC from the Python environment's NVIDIA wheels (the driver brings libcuda).
SP=$(python3 -c "import site; print(site.getsitepackages()[0])")
for d in "$SP"/nvidia/*/lib "$SP"/nvidia/cu13/lib; do [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; done
export LD_LIBRARY_PATH
ldd "$BIN" | grep -E "cu|not found" | tee -a "$OUT/log.txt"
export S1_BENCH_PYTHON=python3 PYTHONUNBUFFERED=1
step() { echo "=== $*"; "$@" 2>&1 | tee -a "$OUT/log.txt"; echo "rc=${PIPESTATUS[0]}"; }
B="$BIN bench train --device cuda"
if [ "${1:-}" = quick ]; then  # the benchmarks alone
  step timeout 60 $BIN bench grads --device cuda --dtype f32
  S1_PROFILE_STEP=1 step timeout 150 $B --dtype bf16 --shape 0.5b --batch 8 --seq 1024 --steps 5 --phases --json "$OUT/train_05b_bf16_8k.json"
  step timeout 120 $B --dtype bf16 --shape 0.5b --seq 512 --steps 5 --json "$OUT/train_05b_bf16.json"
  step timeout 90 $B --dtype bf16 --steps 10 --json "$OUT/train_29m_bf16.json"
  exit 0
fi
step timeout 120 $BIN bench grads --device cuda --dtype f32
step timeout 120 $BIN bench grads --device cuda --dtype bf16
rm -rf /tmp/tiny /tmp/run
step timeout 60 $BIN init-model --arch qwen2 --tie-embeddings --tokenizer $C/tokenizer.json --out /tmp/tiny --hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 128
step timeout 180 $BIN train --model /tmp/tiny --data $C/rows.jsonl --out /tmp/run --device cuda --dtype bf16 --epochs 2 --batch 4 --grad-accum 2 --block-size 256 --lr 1e-3
step timeout 60 python3 scripts/check_checkpoint_transformers.py /tmp/run/$(ls /tmp/run | grep checkpoint | tail -1)
# Where the time goes on the large shape (device synchronised between phases).
S1_PROFILE_STEP=1 step timeout 100 $B --dtype bf16 --shape 0.5b --batch 8 --seq 1024 --steps 2 --no-baselines --phases
step timeout 150 $B --dtype bf16 --steps 10 --json "$OUT/train_29m_bf16.json"
S1_NO_CUDA_KERNELS=1 step timeout 60 $B --dtype bf16 --steps 10 --no-baselines
step timeout 200 $B --dtype bf16 --shape 0.5b --seq 512 --steps 5 --json "$OUT/train_05b_bf16.json"
S1_NO_CUDA_KERNELS=1 step timeout 60 $B --dtype bf16 --shape 0.5b --seq 512 --steps 5 --no-baselines
step timeout 120 $B --dtype f32 --steps 10 --json "$OUT/train_29m_f32.json"
step timeout 200 $B --dtype bf16 --shape 0.5b --batch 8 --seq 1024 --steps 5 --json "$OUT/train_05b_bf16_8k.json"
