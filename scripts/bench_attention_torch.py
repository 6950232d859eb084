#!/usr/bin/env python3
"""Baseline for `s1-studio bench attention`: causal grouped-query attention forward + backward in
PyTorch at one shape, through torch.nn.functional.scaled_dot_product_attention (is_causal,
enable_gqa; on CUDA PyTorch picks its flash or memory-efficient kernel) and, when the flash-attn
package is installed, flash_attn_func. Prints one JSON line: the median milliseconds of each."""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--seq", type=int, default=1024)
ap.add_argument("--heads", type=int, default=8)
ap.add_argument("--kv-heads", type=int, default=4)
ap.add_argument("--head-dim", type=int, default=64)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--device", default="cpu")
a = ap.parse_args()
torch.set_num_threads(a.threads)
dev = "cuda" if a.device.startswith("cuda") else "cpu"
dtype = torch.bfloat16 if dev == "cuda" else torch.float32
b, t, h, kvh, d = a.batch, a.seq, a.heads, a.kv_heads, a.head_dim


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


def median_ms(step):
    times = []
    for i in range(a.runs + 1):
        sync()
        start = time.perf_counter()
        step()
        sync()
        if i > 0:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


q = torch.randn(b, h, t, d, device=dev, dtype=dtype, requires_grad=True)
k = torch.randn(b, kvh, t, d, device=dev, dtype=dtype, requires_grad=True)
v = torch.randn(b, kvh, t, d, device=dev, dtype=dtype, requires_grad=True)
r = torch.randn(b, h, t, d, device=dev, dtype=dtype)


def sdpa():
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    o.backward(r)


out = {"engine": "torch sdpa", "torch": torch.__version__, "sdpa_ms": median_ms(sdpa)}
try:
    from flash_attn import flash_attn_func  # [b, t, h, d] layout, GQA built in

    qf, kf, vf = (x.detach().transpose(1, 2).contiguous().requires_grad_() for x in (q, k, v))
    rf = r.transpose(1, 2).contiguous()

    def fa():
        flash_attn_func(qf, kf, vf, causal=True).backward(rf)

    out["flash_attn_ms"] = median_ms(fa)
except ImportError:
    out["flash_attn_ms"] = None
print(json.dumps(out))
