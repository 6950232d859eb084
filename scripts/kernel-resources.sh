#!/usr/bin/env bash
# What each of our CUDA kernels (kernels/*.cu) costs a GPU, as ptxas assembles it for the
# architectures the training path runs on (sm_80: A100; sm_90: H100/H200): registers per thread,
# spilled bytes, static shared memory. Needs no GPU, only nvcc (scripts/build-cuda.sh puts
# PyPI's on PATH; CI runs this after its CUDA check). Fails when a kernel spills registers to
# local memory: the flash-attention kernels sit close to the 255-register limit, and a spill
# there costs more speed than any measurement on a lent GPU would be there to catch.
#
#   bash scripts/kernel-resources.sh [arch ...]      # default: 80 90
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tk="${S1_CUDA_TOOLKIT:-$root/target/cuda-toolkit}"
if ! command -v nvcc >/dev/null && [ -x "$tk/root/bin/nvcc" ]; then
  export PATH="$tk/root/bin:$PATH"
fi
command -v nvcc >/dev/null || {
  echo "kernel-resources: no nvcc on PATH (run scripts/build-cuda.sh once: it installs PyPI's)" >&2
  exit 1
}
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(80 90)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
spilled=0
for arch in "${archs[@]}"; do
  for src in "$root"/kernels/*.cu; do
    name="$(basename "${src%.cu}")"
    if ! nvcc -arch="sm_$arch" -cubin -O3 -Xptxas -v -I "$root/kernels" -o "$out/$name.cubin" "$src" \
        > "$out/$name.log" 2>&1; then
      cat "$out/$name.log" >&2
      echo "kernel-resources: nvcc failed on kernels/$name.cu for sm_$arch" >&2
      exit 1
    fi
    # ptxas prints, per entry: "Compiling entry function 'NAME' for 'sm_XX'", then
    # "N bytes stack frame, S bytes spill stores, L bytes spill loads", then
    # "Used R registers, ... [M bytes smem]".
    r=0
    awk -v arch="sm_$arch" -v file="$name" '
      /Compiling entry function/ { match($0, /\x27[^\x27]+\x27/); fn = substr($0, RSTART + 1, RLENGTH - 2) }
      /bytes spill stores/ { st = $5; ld = $9 }
      /Used [0-9]+ registers/ {
        regs = $5; smem = 0
        if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11)
        printf "%-6s %-10s %-26s %4d regs  %6d B smem  spill %d/%d B\n", arch, file, fn, regs, smem, st, ld
        if (st + ld > 0) bad = 1
      }
      END { exit bad }' "$out/$name.log" || r=$?
    [ "$r" -eq 0 ] || spilled=1
  done
done
if [ "$spilled" -ne 0 ]; then
  echo "kernel-resources: a kernel above spills registers (spill stores/loads not 0)" >&2
  exit 1
fi
echo "kernel-resources: no kernel spills registers on sm_${archs[*]}"
