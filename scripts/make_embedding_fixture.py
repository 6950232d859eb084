#!/usr/bin/env python3
"""Writes tests/fixtures/embeddings/reference.json for tests/map_model_embed.rs: question
vectors (the mean of a model's last hidden states over the question's tokens, scaled to unit
length) computed by implementations other than ours.

- `parity`: for the small random Qwen2 and Llama models of tests/fixtures/parity/ (written
  by make_parity_fixtures.py), token sequences of several lengths (seeded) and, for each, the mean
  of transformers' last `hidden_states` (after the final norm), the model in float64.
- `smollm2`: for the SmolLM2-135M-Instruct Q4_1 GGUF the tests use (scripts/fetch-test-models.sh),
  a few questions, the tokens llama.cpp makes of them (no BOS, no special tokens), and llama.cpp's
  mean-pooled, normalised embeddings (llama-cpp-python, pooling MEAN: the mean of the states after
  the output norm).

    pip install torch transformers llama-cpp-python
    python3 scripts/make_embedding_fixture.py
"""
import json
import pathlib

import torch
import transformers

ROOT = pathlib.Path(__file__).resolve().parent.parent
PARITY = ROOT / "tests/fixtures/parity"
GGUF = ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = ROOT / "tests/fixtures/embeddings/reference.json"

# Lengths: one token, short, and longer than a batch's shortest (so padding matters).
LENGTHS = [1, 6, 23, 40]

QUESTIONS = [
    "Find the number of positive integers $n$ less than $1000$ such that $n$ is divisible by $7$.",
    "A triangle has sides $3$, $4$ and $5$. What is the radius of its inscribed circle?",
    "Let $f(x) = |x - p| + |x - 15| + |x - p - 15|$, where $0 < p < 15$. Determine the minimum "
    "value taken by $f(x)$ for $x$ in the interval $p \\leq x \\leq 15$.",
    "Two fair dice are rolled. What is the probability that the sum is prime?",
]


def unit(v):
    return (v / v.norm()).tolist()


def load_parity(name):
    """A parity model, its config read as written: transformers 5 keeps the rope in
    `rope_parameters`, which 4.x ignores (it would run rope_theta 10000 without scaling), so
    under 4.x the fields move to `rope_theta` and `rope_scaling`. Checked against the logits
    make_parity_fixtures.py stored."""
    from safetensors.torch import load_file
    folder = PARITY / name
    raw = json.loads((folder / "config.json").read_text())
    config = transformers.AutoConfig.from_pretrained(folder)
    rope = raw.get("rope_parameters")
    if rope and int(transformers.__version__.split(".")[0]) < 5:
        config.rope_theta = rope["rope_theta"]
        if rope.get("rope_type", "default") != "default":
            config.rope_scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, config=config).eval()
    expected = load_file(folder / "expected.safetensors")
    with torch.no_grad():
        err = (model(expected["input_ids"].long()).logits - expected["logits"]).abs().max().item()
    assert err < 1e-4, f"{name}: logits differ from the parity fixture's by {err}"
    return model.double()


def parity():
    out = {}
    g = torch.Generator().manual_seed(21)
    for name in ("qwen2", "llama"):
        model = load_parity(name)
        vocab = model.config.vocab_size
        seqs = [torch.randint(0, vocab, (n,), generator=g).tolist() for n in LENGTHS]
        vecs = []
        with torch.no_grad():
            for s in seqs:
                h = model(torch.tensor([s]), output_hidden_states=True).hidden_states[-1][0]
                vecs.append(unit(h.mean(0)))
        out[name] = {"ids": seqs, "embeddings": vecs}
    return out


def smollm2():
    import llama_cpp
    llm = llama_cpp.Llama(str(GGUF), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                          n_ctx=512, n_threads=2, verbose=False)
    tokens = [llm.tokenize(q.encode(), add_bos=False, special=False) for q in QUESTIONS]
    vecs = [llm.embed(q, normalize=True) for q in QUESTIONS]
    return {"questions": QUESTIONS, "tokens": tokens, "embeddings": vecs,
            "llama_cpp_python": llama_cpp.__version__}


def main():
    data = {"transformers": transformers.__version__, "parity": parity(), "smollm2": smollm2()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
