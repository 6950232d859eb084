#!/usr/bin/env python3
"""Baseline for `s1-studio bench train`: one SFT step (forward, backward, AdamW with the s1
settings, gradient clipping at 1.0) of transformers on PyTorch, on the same model folder and the
same token batch the Rust side uses. Prints one JSON line.

The batch: `--batch` rows of `--seq` tokens, token i of row r = (r * 7919 + i * 104729 + 17) % vocab,
every position in the loss (labels = input_ids), so both sides do the same work."""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seq", type=int, default=256)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--device", default="cpu")
# f32; bf16 (weights, gradients and AdamW state in bf16); amp (f32 weights under bf16 autocast,
# what transformers' Trainer does with bf16=True)
ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "amp"])
ap.add_argument("--checkpointing", action="store_true", help="gradient checkpointing per layer, as ours")
a = ap.parse_args()
torch.set_num_threads(a.threads)
dev = "cuda" if a.device.startswith("cuda") else "cpu"
dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
# transformers renamed `torch_dtype` to `dtype` in 4.56; older versions refuse `dtype`.
new_kw = tuple(int(x) for x in transformers.__version__.split(".")[:2]) >= (4, 56)
model = AutoModelForCausalLM.from_pretrained(a.model, **({"dtype": dtype} if new_kw else {"torch_dtype": dtype}))
model = model.to(dev).train()
if a.checkpointing:
    model.config.use_cache = False
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
vocab = model.config.vocab_size
ids = torch.tensor([[(r * 7919 + i * 104729 + 17) % vocab for i in range(a.seq)] for r in range(a.batch)], device=dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), weight_decay=1e-4)


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


times, losses = [], []
for step in range(a.steps + 1):  # the first step warms up
    sync()
    t = time.perf_counter()
    with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=a.dtype == "amp"):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    sync()
    if step > 0:
        times.append(time.perf_counter() - t)
    losses.append(loss.item())
step_s = statistics.median(times)
print(json.dumps({"checkpointing": a.checkpointing, "engine": "transformers " + __import__("transformers").__version__ + " / torch " + torch.__version__,
                  "step_s": step_s, "tokens_per_s": a.batch * a.seq / step_s, "steps": times, "losses": losses}))
