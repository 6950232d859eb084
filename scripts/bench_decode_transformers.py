#!/usr/bin/env python3
"""Baseline for `s1-studio bench decode` and `bench gpu-decode`: greedy decode tokens/s of
transformers on PyTorch (CPU or CUDA, f32 or bf16), same model folder, same prompt ids, KV cache;
with --batch N, N sequences at once (row i's prompt shifted by i, as ours), tokens/s of all rows
together. Prints one JSON line."""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--prompt-tokens", type=int, default=32)
ap.add_argument("--new-tokens", type=int, default=128)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--device", default="cpu")
ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
ap.add_argument("--batch", type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
dev = a.device if a.device.startswith("cuda") else "cpu"
want = getattr(torch, a.dtype)
# transformers renamed `torch_dtype` to `dtype` in 4.56; older versions ignore `dtype`.
new_kw = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (4, 56)
model = AutoModelForCausalLM.from_pretrained(a.model, **({"dtype": want} if new_kw else {"torch_dtype": want}))
model = model.eval().to(dev)
assert next(model.parameters()).dtype == want, f"loaded as {next(model.parameters()).dtype}, asked {want}"
vocab = model.config.vocab_size
ids = torch.tensor([[((i * 7919 + 13) % vocab + r) % vocab for i in range(a.prompt_tokens)] for r in range(a.batch)],
                   device=dev)
rates = []
with torch.inference_mode():
    for _ in range(a.repeats):
        out = model(input_ids=ids, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
        t = time.perf_counter()
        for _ in range(a.new_tokens):
            nxt = logits.argmax(-1, keepdim=True)
            if dev.startswith("cuda"):
                nxt = nxt.cpu().to(dev)  # the token goes through the host, as a sampler's would
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1]
        rates.append(a.batch * a.new_tokens / (time.perf_counter() - t))
print(json.dumps({"batch": a.batch, "engine": "transformers " + __import__("transformers").__version__ + " / torch " + torch.__version__,
                  "tokens_per_s": statistics.median(rates), "runs": rates}))
