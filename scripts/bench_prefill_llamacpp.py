#!/usr/bin/env python3
"""Baseline for `s1-studio bench decode --prefill`: prompt eval (prefill) tokens/s of llama.cpp
(llama-cpp-python) on the same GGUF and prompt ids, for each prompt length. Prints one JSON line
mapping each length to the median tokens/s."""
import argparse
import json
import statistics
import time

import llama_cpp

ap = argparse.ArgumentParser()
ap.add_argument("--gguf", required=True)
ap.add_argument("--lengths", default="40,256,1024")
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
lengths = [int(x) for x in a.lengths.split(",")]
# n_batch covers the longest prompt: one llama_decode call per prompt, as this engine runs one.
llm = llama_cpp.Llama(model_path=a.gguf, n_ctx=max(lengths) + 8, n_batch=max(lengths), n_ubatch=max(lengths),
                      n_threads=a.threads, n_threads_batch=a.threads, verbose=False, logits_all=False)
rates = {}
for n in lengths:
    ids = [(i * 7919 + 13) % 1000 for i in range(n)]
    runs = []
    for _ in range(a.repeats + 1):
        llm.reset()
        llm._ctx.kv_cache_clear()
        t = time.perf_counter()
        llm.eval(ids)
        runs.append(n / (time.perf_counter() - t))
    rates[str(n)] = statistics.median(runs[1:])
print(json.dumps({"engine": "llama-cpp-python " + llama_cpp.__version__, "prefill_tokens_per_s": rates}))
