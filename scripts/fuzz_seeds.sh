#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the repository's fixtures (nothing large is committed: big
# files are cut to their first bytes, which hold the headers the readers parse).
# Usage: bash scripts/fuzz_seeds.sh   (from the repository root)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
c="$root/fuzz/corpus"
mkdir -p "$c"/{gguf,safetensors,config_json,tokenizer,chat_template,rows,grade}
fx="$root/tests/fixtures"
for f in "$fx"/gguf/*.gguf; do cp "$f" "$c/gguf/"; done
for d in "$fx"/gguf/*/; do
  n=$(basename "$d")
  [ -f "$d/config.json" ] && cp "$d/config.json" "$c/config_json/$n.json"
  [ -f "$d/model.safetensors" ] && head -c 65536 "$d/model.safetensors" > "$c/safetensors/$n"
  [ -f "$d/expected.safetensors" ] && head -c 65536 "$d/expected.safetensors" > "$c/safetensors/$n-expected"
  if [ -f "$d/tokenizer.json" ]; then
    { cat "$d/tokenizer.json"; printf '\0'; cat "$d/tokenizer_config.json" 2>/dev/null || true; } > "$c/tokenizer/$n"
  fi
done
for f in "$root"/assets/chat_templates/*.jinja; do cp "$f" "$c/chat_template/$(basename "$f")"; done
# Inputs that once crashed a target (fuzz/regressions/<target>/): replayed first on every run.
for f in "$root"/fuzz/regressions/*/*; do
  [ -f "$f" ] && cp "$f" "$c/$(basename "$(dirname "$f")")/regression-$(basename "$f")"
done
for f in "$fx"/curate/*.parquet; do cp "$f" "$c/rows/$(basename "$f")"; done
for f in "$root"/assets/curate/pool/*.jsonl; do head -n 3 "$f" > "$c/rows/$(basename "$f")"; done
python3 - "$fx/s1_extraction.json" "$c/grade" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))["cases"]
for i, case in enumerate(cases[:200]):
    data = str(case.get("response", "")) + "\0" + str(case.get("reference", ""))
    open(f"{sys.argv[2]}/s1_{i}", "w").write(data)
PY
printf '\\boxed{\\frac{1}{2}}\0\\dfrac12' > "$c/grade/frac"
printf 'Answer: (1, 2)\0(1,2)' > "$c/grade/tuple"
echo "seeded $(find "$c" -type f | wc -l) files under $c"
