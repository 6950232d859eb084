"""Checks that a curation export loads in Hugging Face `datasets` with the s1K schema.

    python scripts/check_export_datasets.py EXPORT.parquet [EXPORT.jsonl]

Loads the Parquet with `datasets.load_dataset("parquet", ...)`, checks the s1K columns and their
types (`thinking_trajectories` a list of strings), and, given the JSONL too, that both hold the
same rows. Exits non-zero with the reason otherwise.
"""
import json
import sys

import datasets

S1K_COLUMNS = ["solution", "question", "cot_type", "source_type", "metadata", "cot",
               "thinking_trajectories", "attempt"]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pq = sys.argv[1]
    ds = datasets.load_dataset("parquet", data_files=pq, split="train")
    if ds.column_names != S1K_COLUMNS:
        sys.exit(f"{pq}: columns {ds.column_names}, expected {S1K_COLUMNS}")
    feat = ds.features["thinking_trajectories"]
    inner = getattr(feat, "feature", None)
    if inner is None or getattr(inner, "dtype", None) not in ("string", "large_string"):
        sys.exit(f"{pq}: thinking_trajectories is {feat}, expected a list of strings")
    for c in ["question", "solution", "attempt", "metadata", "cot_type", "source_type"]:
        if ds.features[c].dtype not in ("string", "large_string"):
            sys.exit(f"{pq}: {c} is {ds.features[c]}, expected a string")
    for i, row in enumerate(ds):
        if not row["question"] or not row["thinking_trajectories"] or not row["thinking_trajectories"][0]:
            sys.exit(f"{pq}: row {i} lacks a question or a trace")
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            rows = [json.loads(l) for l in f if l.strip()]
        if len(rows) != len(ds):
            sys.exit(f"{sys.argv[2]} has {len(rows)} rows, the Parquet {len(ds)}")
        for i, (a, b) in enumerate(zip(rows, ds)):
            if a != b:
                sys.exit(f"row {i} differs between the JSONL and the Parquet")
    print(f"ok: {pq} loads in datasets {datasets.__version__}: {len(ds)} rows, s1K columns")


if __name__ == "__main__":
    main()
