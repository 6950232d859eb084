#!/usr/bin/env python3
"""Writes tests/fixtures/smollm2_llamacpp.json: llama.cpp's (llama-cpp-python's) tokenization of a
few texts and its logits for a chat prompt with SmolLM2-135M-Instruct Q4_1, the reference for
tests/gguf_smollm2.rs.

    pip install llama-cpp-python==0.3.16 numpy && bash scripts/fetch-test-models.sh
    python3 scripts/make_gguf_fixture.py
"""
import json
import pathlib

import llama_cpp
import numpy as np

root = pathlib.Path(__file__).resolve().parent.parent
gguf = root / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
# f32 KV cache, so that the reference adds no f16 rounding of keys and values.
llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=512, n_threads=2, verbose=False, logits_all=True,
                      type_k=0, type_v=0)

texts = [
    "Hello world",
    "What is 12345 + 678? Let's compute: 12345+678=13023.",
    "naïve café — déjà vu, 日本語, emoji 🙂!",
    "def f(x):\n    return x**2  # square\n\n\n",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
]
tokens = [llm.tokenize(t.encode(), add_bos=False, special=True) for t in texts]

chat = (
    "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
)
chat_ids = llm.tokenize(chat.encode(), add_bos=False, special=True)
llm.reset()
llm.eval(chat_ids)
scores = np.array(llm.scores[len(chat_ids) - 1])
top = np.argsort(-scores)[:10]
# Greedy continuation, token by token.
greedy = []
for _ in range(12):
    tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    greedy.append(tok)
    if tok == llm.token_eos():
        break
    llm.eval([tok])

fixture = {
    "source": "llama-cpp-python " + llama_cpp.__version__ + ", " + gguf.name,
    "texts": texts,
    "tokens": tokens,
    "chat": chat,
    "chat_ids": chat_ids,
    "top_ids": [int(i) for i in top],
    "top_logits": [float(scores[i]) for i in top],
    "greedy": greedy,
}
out = root / "tests/fixtures/smollm2_llamacpp.json"
out.write_text(json.dumps(fixture, indent=1, ensure_ascii=False))
print("wrote", out, "greedy:", repr(llm.detokenize(greedy).decode(errors="replace")))
