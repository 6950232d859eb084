#!/usr/bin/env python3
"""Reference counts for the curation quality rules (S1_RECIPE.md §1 step 3) on the shared pool
files, computed with Python's `re` (the lookahead pattern as s1 wrote it) and plain substring
tests, for tests/curate_quality.rs. Writes tests/fixtures/quality_rules.json.

    python3 scripts/make_quality_fixture.py [../shared/data]
"""
import json
import re
import sys
from pathlib import Path

data = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent.parent / "shared/data")
bold = re.compile(r"\*\*(?=.*\d)[^\s\]]*\*\*")
out = {}
for name, field in [
    ("pool/math_train.jsonl", "problem"),
    ("pool/math_test_minus_math500.jsonl", "problem"),
    ("pool/aime_1983_2023.jsonl", "problem"),
    ("pool/olympiadbench_en_comp_675.jsonl", "question"),
]:
    rows = [json.loads(l) for l in open(data / name)]
    flagged = {"asy": [], "image": [], "enumeration": [], "bold_number": []}
    for i, r in enumerate(rows):
        q = r[field]
        if "[asy]" in q:
            flagged["asy"].append(i)
        if "![Image]" in q:
            flagged["image"].append(i)
        if any(f"p{k}." in q for k in range(1, 1000)):
            flagged["enumeration"].append(i)
        if bold.search(q):
            flagged["bold_number"].append(i)
    out[name] = {"field": field, "rows": len(rows), "flagged": flagged}
dst = Path(__file__).resolve().parent.parent / "tests/fixtures/quality_rules.json"
dst.write_text(json.dumps(out, indent=1) + "\n")
print(json.dumps({k: {r: len(v) for r, v in o["flagged"].items()} for k, o in out.items()}))
