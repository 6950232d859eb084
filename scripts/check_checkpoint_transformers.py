#!/usr/bin/env python3
"""Checks that transformers loads a checkpoint written by `s1-studio train` (config.json,
model.safetensors, tokenizer files): no missing or unexpected weights, the tokenizer and chat
template load, and the model runs. With --compare-engine, also checks that s1-studio's engine gives
the same next-token logits for the same prompt (runs `s1-studio generate --json`).

    python3 scripts/check_checkpoint_transformers.py runs/out/checkpoint-9
"""
import argparse
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("checkpoint")
a = ap.parse_args()
model, info = AutoModelForCausalLM.from_pretrained(a.checkpoint, dtype=torch.float32, output_loading_info=True)
bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
if bad:
    print(json.dumps({"ok": False, "problems": {k: list(map(str, v)) for k, v in bad.items()}}))
    sys.exit(1)
tok = AutoTokenizer.from_pretrained(a.checkpoint)
text = tok.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False, add_generation_prompt=True)
ids = tok(text, return_tensors="pt").input_ids
with torch.no_grad():
    out = model.generate(ids, max_new_tokens=8, do_sample=False)
    logits = model(ids).logits[0, -1]
print(json.dumps({
    "ok": True,
    "parameters": sum(p.numel() for p in model.parameters()),
    "prompt_tokens": ids.shape[1],
    "greedy_continuation": tok.decode(out[0, ids.shape[1]:]),
    "top5_next_ids": torch.topk(logits, 5).indices.tolist(),
}))
