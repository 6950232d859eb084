#!/usr/bin/env bash
# An nvcc for candle-kernels' build script (through cudaforge, which takes $NVCC) when
# scripts/build-cuda.sh only type-checks (`clippy`, `check`): nothing is linked or run then, so
# candle's own CUDA kernels (its PTX and the static MMQ/MoE library, 460 s of nvcc on two cores)
# need not be compiled. Each requested output is written empty; anything else (--version,
# --list-gpu-code) goes to the real nvcc. Our kernels/*.cu are still compiled by the real nvcc:
# build.rs runs $CUDA_ROOT/bin/nvcc and never reads $NVCC. build-cuda.sh runs such a check in
# target/cuda-check, or removes candle-kernels' outputs after it (S1_CUDA_CHECK_DIR), so the empty
# outputs never reach a real build.
set -euo pipefail
args=("$@")
out="" outdir="" mode="" inputs=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift ;;
    --output-directory) outdir="$2"; shift ;;
    --ptx) mode=ptx ;;
    -c) mode=obj ;;
    --lib) mode=lib ;;
    *.cu) inputs+=("$1") ;;
  esac
  shift
done
case "$mode" in
  ptx)
    for src in "${inputs[@]}"; do
      name="$(basename "${src%.cu}").ptx"
      : > "${out:-${outdir:-.}/$name}"
    done ;;
  obj) : > "$out" ;;
  lib) printf '!<arch>\n' > "$out" ;;
  *) exec "${S1_REAL_NVCC:?S1_REAL_NVCC names the real nvcc}" "${args[@]}" ;;
esac
