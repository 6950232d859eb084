#!/usr/bin/env python3
"""Makes models/SmolLM2-135M-Instruct.Q4_K_M.gguf for `s1-studio bench decode`: the SmolLM2 Q4_1
that scripts/fetch-test-models.sh fetches, re-quantized to Q4_K_M by llama.cpp itself
(llama-cpp-python's llama_model_quantize, allow_requantize). llama.cpp's recipe writes a mix of
Q4_K, Q6_K, Q5_0 and Q8_0 tensors for this model (576-wide rows do not all divide into 256-wide
K-quant blocks), the mix the CPU kernels have to cover.

Rerun: /work/pyref/bin/python scripts/make_q4km_smollm2.py  (any Python with llama-cpp-python)
"""
import argparse
import ctypes
import os
import sys

import llama_cpp

ap = argparse.ArgumentParser()
ap.add_argument("--src", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
ap.add_argument("--out", default="models/SmolLM2-135M-Instruct.Q4_K_M.gguf")
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
a = ap.parse_args()
if not os.path.exists(a.src):
    sys.exit(f"{a.src} not found: run `bash scripts/fetch-test-models.sh` first")
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
params.allow_requantize = True
params.nthread = a.threads
rc = llama_cpp.llama_model_quantize(a.src.encode(), a.out.encode(), ctypes.byref(params))
if rc != 0:
    sys.exit(f"llama_model_quantize failed with code {rc}")
print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.1f} MB), llama-cpp-python {llama_cpp.__version__}")
