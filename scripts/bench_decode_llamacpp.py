#!/usr/bin/env python3
"""Baseline for `s1-studio bench decode`: batch-1 greedy decode tokens/s of llama.cpp
(llama-cpp-python) on the same GGUF and prompt ids. Prints one JSON line."""
import argparse
import json
import statistics
import time

import llama_cpp
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--gguf", required=True)
ap.add_argument("--prompt-tokens", type=int, default=32)
ap.add_argument("--new-tokens", type=int, default=128)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--device", default="cpu", help="accepted for symmetry; llama.cpp runs on the CPU here")
a = ap.parse_args()
llm = llama_cpp.Llama(model_path=a.gguf, n_ctx=a.prompt_tokens + a.new_tokens + 8, n_threads=a.threads,
                      n_threads_batch=a.threads, verbose=False, logits_all=True)
ids = [(i * 7919 + 13) % 1000 for i in range(a.prompt_tokens)]
rates = []
for _ in range(a.repeats):
    llm.reset()
    llm.eval(ids)
    t = time.perf_counter()
    for _ in range(a.new_tokens):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([tok])
    rates.append(a.new_tokens / (time.perf_counter() - t))
print(json.dumps({"engine": "llama-cpp-python " + llama_cpp.__version__, "tokens_per_s": statistics.median(rates),
                  "runs": rates}))
