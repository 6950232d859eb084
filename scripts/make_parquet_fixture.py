"""Writes tests/fixtures/curate/*.parquet with Hugging Face `datasets`, as the hub serves files:
an s1K-shaped file (a list-of-strings `thinking_trajectories`, a stringified `metadata`, a null
`cot`) and an s1K-1.1-shaped one with an extra struct column, so the importer is tested on files
it did not write itself.

    python scripts/make_parquet_fixture.py   (needs `pip install datasets`)
"""
import os

import datasets

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "curate")

s1k = datasets.Dataset.from_dict({
    "solution": ["1. Since $x=2$, the answer is $\\boxed{2}$.", "Count them: 10.", "A hexagon."],
    "question": ["Solve $x+1=3$.", "How many primes are below 30?", "What has six sides?"],
    "cot_type": ["math", "math", "math"],
    "source_type": ["AI-MO/NuminaMath-CoT/aops_forum", "qq8933/AIME_1983_2024", "simplescaling/s1K"],
    "metadata": ["{'source': 'aops_forum'}", "{'Year': 1990}", "{}"],
    "cot": [None, None, None],
    "thinking_trajectories": [["We subtract 1 from both sides."], ["2, 3, 5, 7, 11, 13, 17, 19, 23, 29."], ["Six sides."]],
    "attempt": ["x = 2", "10", "A hexagon"],
})
s1k.to_parquet(os.path.join(OUT, "s1k_like.parquet"))

s11 = datasets.Dataset.from_dict({
    "solution": ["42"],
    "question": ["What is six times seven?"],
    "cot_type": ["math"],
    "source_type": ["gsm8k"],
    "metadata": ["{}"],
    "gemini_thinking_trajectory": ["6*7"],
    "gemini_attempt": ["42"],
    "deepseek_thinking_trajectory": ["Six sevens are forty-two."],
    "deepseek_attempt": ["**42**"],
    "gemini_grade": ["Yes"],
    "gemini_grade_reason": ["ok"],
    "deepseek_grade": ["Yes"],
    "deepseek_grade_reason": ["ok"],
    "extra": [{"level": 3, "tags": ["a", "b"]}],
})
s11.to_parquet(os.path.join(OUT, "s1k11_like.parquet"))
print("wrote", OUT)
