#!/usr/bin/env bash
# One device-machine run (see .library/device) for what only a GPU can show, most important first,
# each step under its own timeout and the whole under a time guard (a step that would start after
# $BUDGET seconds is skipped and says so):
#   1. kernels/flash_attn.cu against the CPU tiled op (forward and gradients, bf16; t up to 4096,
#      GQA ratios 1, 2, 7, head sizes 64 and 128): `bench attention --check` fails above 2e-2.
#      Then the same for kernels/flash_attn_v2.cu (`--kernel v2`, not yet run on a GPU).
#   2. the batched decode step on CUDA (what `serve` runs for concurrent requests): checked
#      against each sequence alone, then 1, 4 and 16 sequences at once against transformers'
#      batched decode on the same GPU (Qwen2.5-0.5B's shape, bf16); f32 checked too.
#   3. training refuses, naming what to lower, when the GPU's free memory cannot hold the run, and
#      a run that fits starts and writes a checkpoint.
#   4. a training step at s1's sequence lengths against PyTorch + transformers (sdpa): 0.5B's shape
#      at 1x16,384 with checkpointing, then 8x1,024 with and without the kernels.
#   5. attention alone against PyTorch's sdpa at 16,384, and 1.5B's shape at 1x32,768.
#   6. the pool map's frame time on the GPU (wgpu on Vulkan), 100K and 1M points.
# Carry: target/devx/ with s1-studio.xz (`S1_CUDA_PROFILE=ci bash scripts/build-cuda.sh build --bin
# s1-studio`, stripped, xz), tokenizer.json.xz, tokenizer_config.json, rows.jsonl and, for 6,
# map_frame_time.xz (`cargo build --release --bench map_frame_time`: the CI profile builds egui and
# wgpu at opt-level 1) plus .gl (the Vulkan/EGL loader packages, .library/device/README.md).
# Results go to $OUT (or /tmp/out).
#   bash scripts/device-check.sh [budget seconds, default 520] [sections, default all:
#                                 "flash decode refusal train attention map train32k"]
set -u
BUDGET="${1:-520}"
SECTIONS="${2:-flash decode refusal train attention map train32k}"
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
T0=$(date +%s)
C=/tmp/devcarry
mkdir -p $C
unxz() { xz -dc "$1" > "$2" 2>/dev/null || python3 -c "import lzma,sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())" "$1" > "$2"; }
[ -f target/devx/s1-studio.xz ] && unxz target/devx/s1-studio.xz $C/s1-studio
unxz target/devx/tokenizer.json.xz $C/tokenizer.json
cp target/devx/tokenizer_config.json $C/
BIN=$C/s1-studio
chmod +x "$BIN"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv | tee "$OUT/gpu.txt"
SP=$(python3 -c "import site; print(site.getsitepackages()[0])")
for d in "$SP"/nvidia/*/lib "$SP"/nvidia/cu13/lib; do [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; done
export LD_LIBRARY_PATH S1_BENCH_PYTHON=python3 PYTHONUNBUFFERED=1
ldd "$BIN" | grep -E "not found" | tee -a "$OUT/log.txt"
left() { echo $((BUDGET - ($(date +%s) - T0))); }
# step TIMEOUT CMD...: runs when at least TIMEOUT/2 seconds of the budget are left.
step() {
  local t=$1; shift
  if [ "$(left)" -lt $((t / 2)) ]; then echo "=== SKIPPED (time): $*" | tee -a "$OUT/log.txt"; return; fi
  echo "=== [$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/log.txt"
  timeout "$t" "$@" 2>&1 | tee -a "$OUT/log.txt"
  echo "rc=${PIPESTATUS[0]}" | tee -a "$OUT/log.txt"
}
A="$BIN bench attention --device cuda"
# 1. FlashAttention kernels against the CPU op.
want flash && for hkd in "2 2 64" "4 2 64" "7 1 64" "14 2 64" "12 2 128" "7 1 128"; do
  set -- $hkd
  step 60 $A --heads $1 --kv-heads $2 --head-dim $3 --batch 2 --seq 1,17,64,1000,4096 --check 4096 --runs 1 --no-baselines
done
want flash && for hkd in "2 2 64" "4 2 64" "7 1 64" "14 2 64" "12 2 128" "7 1 128"; do
  set -- $hkd
  step 60 $A --heads $1 --kv-heads $2 --head-dim $3 --batch 2 --seq 1,17,64,1000,4096 --check 4096 --runs 1 --no-baselines --kernel v2
done
# 2. Batched decode.
G="$BIN bench gpu-decode --device cuda --model-dir /tmp/q05"
want decode && step 150 $G --dtype bf16 --prompt-tokens 64 --new-tokens 128 --repeats 3 --batches 4,16 --json "$OUT/decode_batches.json"
want decode && step 60 $G --dtype f32 --prompt-tokens 64 --new-tokens 32 --repeats 1 --batches 16 --no-baselines
# 3. The memory refusal, and a run that fits.
if want refusal; then
rm -rf /tmp/tiny /tmp/run /tmp/refused
step 30 $BIN init-model --arch qwen2 --tie-embeddings --tokenizer $C/tokenizer.json --out /tmp/tiny --hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 128
step 30 $BIN train --model /tmp/tiny --data target/devx/rows.jsonl --out /tmp/refused --device cuda --dtype bf16 --batch 1024 --block-size 32768
step 90 $BIN train --model /tmp/tiny --data target/devx/rows.jsonl --out /tmp/run --device cuda --dtype bf16 --epochs 1 --batch 4 --block-size 256 --lr 1e-3
ls /tmp/run | tee -a "$OUT/log.txt"
fi
# 4. Training steps at s1's lengths against PyTorch.
B="$BIN bench train --device cuda --dtype bf16"
want train && step 150 $B --shape 0.5b --batch 1 --seq 16384 --steps 3 --checkpointing --json "$OUT/train_05b_1x16k.json"
want train && step 120 $B --shape 0.5b --batch 8 --seq 1024 --steps 4 --json "$OUT/train_05b_8x1k.json"
want train && S1_NO_FLASH_ATTENTION=1 step 60 $B --shape 0.5b --batch 8 --seq 1024 --steps 4 --no-baselines
# The same step with the v2 kernels (after `flash` checked them).
want train && S1_FLASH_KERNEL=v2 step 60 $B --shape 0.5b --batch 8 --seq 1024 --steps 4 --no-baselines
# 5. Attention alone; the 1.5B shape at 32K.
want attention && step 90 $A --heads 14 --kv-heads 2 --head-dim 64 --batch 1 --seq 4096,16384 --runs 5
# v1 and v2 side by side (each also checked against the CPU op at 4096), d = 64 and 128.
want attention && step 120 $A --heads 14 --kv-heads 2 --head-dim 64 --batch 1 --seq 4096,16384 --runs 5 --kernel both --check 4096
want attention && step 120 $A --heads 12 --kv-heads 2 --head-dim 128 --batch 1 --seq 4096,16384 --runs 5 --kernel both --check 4096
# 6. The pool map on the GPU.
if want map && [ -f target/devx/map_frame_time.xz ] && [ -d .gl ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
  unxz target/devx/map_frame_time.xz $C/map_frame_time; chmod +x $C/map_frame_time
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$VK_DRIVER_FILES" ] || unset VK_DRIVER_FILES
  step 90 $C/map_frame_time --bench
fi
# 1.5B at 32K: ours alone first (its peak GPU memory sampled every second), then against PyTorch
# (the bench runs the baselines first, before ours holds GPU memory).
if want train32k; then
  (while sleep 1; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >> "$OUT/gpu_mem.txt"; done) &
  SAMPLER=$!
  step 120 $B --shape 1.5b --batch 1 --seq 32768 --steps 2 --rounds 1 --checkpointing --no-baselines
  kill $SAMPLER
  echo "peak GPU memory in use, ours at 1.5B 1x32768: $(sort -n "$OUT/gpu_mem.txt" | tail -1) MiB" | tee -a "$OUT/log.txt"
  step 200 $B --shape 1.5b --batch 1 --seq 32768 --steps 2 --rounds 1 --checkpointing --json "$OUT/train_15b_1x32k.json"
fi
echo "=== done in $(( $(date +%s) - T0 ))s" | tee -a "$OUT/log.txt"
