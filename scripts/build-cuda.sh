#!/usr/bin/env bash
# Builds s1-studio with `--features cuda` on a machine that has no CUDA toolkit installed: the
# toolkit pieces come from PyPI (nvcc 13.0 to match a CUDA 13.0 driver, runtime, cuBLAS, cuRAND,
# NVRTC), and where no driver is installed a link-time stub of libcuda stands in (the real
# libcuda.so.1 is loaded at run time). A machine with a CUDA 13.0 toolkit can simply run
# `cargo build --release --features cuda`.
#
#   bash scripts/build-cuda.sh [build|test|run …] [extra cargo args]   # CUDA_COMPUTE_CAP defaults to 90
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tk="${S1_CUDA_TOOLKIT:-$root/target/cuda-toolkit}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"

if ! command -v nvcc >/dev/null || ! nvcc --version | grep -q "release 13.0"; then
  if [ ! -x "$tk/venv/bin/python" ]; then
    python3 -m venv "$tk/venv"
    "$tk/venv/bin/pip" install -q "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" \
      "nvidia-cublas==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-curand" "nvidia-cuda-crt==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-nvvm==13.0.*" 2>/dev/null \
      || "$tk/venv/bin/pip" install -q "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" \
      "nvidia-cublas==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-curand"
  fi
  cu="$(echo "$tk"/venv/lib/python3*/site-packages/nvidia/cu13)"
  mkdir -p "$tk/root"
  ln -sfn "$cu/bin" "$tk/root/bin"
  ln -sfn "$cu/include" "$tk/root/include"
  mkdir -p "$tk/root/lib64"
  # Unversioned names for the linker.
  for f in "$cu"/lib/lib*.so.*; do
    base="$(basename "$f")"
    ln -sfn "$f" "$tk/root/lib64/$base"
    ln -sfn "$f" "$tk/root/lib64/${base%%.so.*}.so"
  done
  export PATH="$tk/root/bin:$PATH"
  export CUDA_ROOT="$tk/root"
  export LD_LIBRARY_PATH="$tk/root/lib64:${LD_LIBRARY_PATH:-}"
fi
nvcc --version | tail -2

# libcuda comes with the driver; without one, link against a stub whose soname is the driver's.
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda.so ' && [ ! -e "${CUDA_ROOT:-/nonexistent}/lib64/libcuda.so" ]; then
  cargo fetch --quiet
  sys="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs | tail -1)"
  stub="${CUDA_ROOT:-$tk/root}/lib64"
  mkdir -p "$stub"
  grep -oE '^ +fn (cu[A-Za-z0-9_]+)\(' "$sys" | sed -E 's/^ +fn (cu[A-Za-z0-9_]+)\(/\1/' | sort -u \
    | awk '{print "void " $1 "(void) {}"}' > "$tk/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$tk/libcuda_stub.c"
  echo "linked against a libcuda stub ($(wc -l < "$tk/libcuda_stub.c") symbols); the driver's libcuda.so.1 is used at run time"
fi

cd "$root"
cmd=build
case "${1:-}" in build|test|run|clippy|check) cmd="$1"; shift ;; esac
# A type check links and runs nothing, so candle's own kernels (candle-kernels: its PTX and a static
# MMQ/MoE library, 460 s of nvcc on two cores) are written empty by
# scripts/nvcc-check-stub.sh; kernels/*.cu, ours, are still compiled by the real nvcc (build.rs).
# In a target folder of its own (target/cuda-check): candle-kernels' build cache would otherwise
# keep the empty files for a later real build. S1_CUDA_CHECK_FULL=1 compiles candle's kernels too.
# S1_CUDA_CHECK_DIR=<target folder> checks in that folder instead, so that every crate the
# `cuda` feature leaves as it was is the one a check without it already made there (CI checks in
# target/, after `cargo clippy`): candle-kernels' build outputs and records are removed from it
# afterwards, so that whatever builds there next runs its build script again, with the real nvcc.
profile="${S1_CUDA_PROFILE:-release}"
if { [ "$cmd" = clippy ] || [ "$cmd" = check ]; } && [ -z "${S1_CUDA_CHECK_FULL:-}" ]; then
  S1_REAL_NVCC="$(command -v nvcc)"
  export S1_REAL_NVCC NVCC="$root/scripts/nvcc-check-stub.sh"
  export CARGO_TARGET_DIR="${S1_CUDA_CHECK_DIR:-$root/target/cuda-check}"
  if [ -n "${S1_CUDA_CHECK_DIR:-}" ]; then
    forget_stubbed() {
      local d="$CARGO_TARGET_DIR/$profile"
      [ "$profile" = dev ] && d="$CARGO_TARGET_DIR/debug"
      rm -rf "$d"/build/candle-kernels-* "$d"/.fingerprint/candle-kernels-*
    }
    trap forget_stubbed EXIT
  fi
  echo "candle-kernels' CUDA sources are not compiled by this $cmd (S1_CUDA_CHECK_FULL=1 does); kernels/*.cu are"
fi
cargo "$cmd" --profile "$profile" --features cuda "$@"
