#!/usr/bin/env bash
# One device-machine run for the CUDA FlashAttention kernels (kernels/flash_attn.cu), for a session
# with a GPU (see .library/device): (1) the kernels' output and gradients against the CPU tiled op
# on the same bf16 inputs, t in {1, 17, 64, 1000, 4096}, GQA ratios 1, 2, 7, head sizes 64 and 128;
# (2) attention forward + backward against PyTorch's sdpa (and flash-attn if installed) at the
# issue's shapes; (3) whole training steps against PyTorch + transformers (sdpa): Qwen2.5-0.5B's
# shape at 1x16,384 and 8x1,024, 1.5B's at 1x32,768, bf16, with MFU, and 8x1,024 without the
# kernels (S1_NO_FLASH_ATTENTION=1) for the before/after. Same carry as scripts/device-train-check.sh
# (target/devx/s1-studio.xz built by `S1_CUDA_PROFILE=ci bash scripts/build-cuda.sh build --bin
# s1-studio`). Results go to $OUT (or /tmp/out). About 8 minutes on an H100/H200.
set -u
MODE="${1:-}"  # "parity": stop after (1)
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
C=/tmp/devcarry
mkdir -p $C
xz -dc target/devx/s1-studio.xz > $C/s1-studio 2>/dev/null \
  || python3 -c "import lzma,sys; sys.stdout.buffer.write(lzma.open('target/devx/s1-studio.xz').read())" > $C/s1-studio
BIN=$C/s1-studio
chmod +x "$BIN"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv | tee "$OUT/gpu.txt"
SP=$(python3 -c "import site; print(site.getsitepackages()[0])")
for d in "$SP"/nvidia/*/lib "$SP"/nvidia/cu13/lib; do [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; done
export LD_LIBRARY_PATH
export S1_BENCH_PYTHON=python3 PYTHONUNBUFFERED=1
step() { echo "=== $*"; "$@" 2>&1 | tee -a "$OUT/log.txt"; echo "rc=${PIPESTATUS[0]}"; }
A="$BIN bench attention --device cuda"
# (1) parity: exits non-zero when an error exceeds 2e-2 (bf16).
for hkd in "2 2 64" "4 2 64" "7 1 64" "14 2 64" "12 2 128" "7 1 128"; do
  set -- $hkd
  step timeout 120 $A --heads $1 --kv-heads $2 --head-dim $3 --batch 2 --seq 1,17,64,1000,4096 --check 4096 --runs 1 --no-baselines
done
[ "$MODE" = parity ] && exit 0
# (2) attention alone at the shapes.
step timeout 120 $A --heads 14 --kv-heads 2 --head-dim 64 --batch 1 --seq 1024,4096,16384 --runs 5
step timeout 60 $A --heads 14 --kv-heads 2 --head-dim 64 --batch 8 --seq 1024 --runs 5
step timeout 120 $A --heads 12 --kv-heads 2 --head-dim 128 --batch 1 --seq 32768 --runs 3
# (3) training steps against PyTorch + transformers.
B="$BIN bench train --device cuda --dtype bf16"
step timeout 200 $B --shape 0.5b --batch 1 --seq 16384 --steps 3 --checkpointing --json "$OUT/train_05b_1x16k.json"
step timeout 200 $B --shape 0.5b --batch 8 --seq 1024 --steps 5 --json "$OUT/train_05b_8x1k.json"
S1_NO_FLASH_ATTENTION=1 step timeout 100 $B --shape 0.5b --batch 8 --seq 1024 --steps 5 --no-baselines
step timeout 300 $B --shape 1.5b --batch 1 --seq 32768 --steps 2 --checkpointing --json "$OUT/train_15b_1x32k.json"
