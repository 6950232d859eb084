#!/usr/bin/env python3
"""Writes the reference fixtures for tests/model_parity.rs with PyTorch + transformers.

For each small random config: a Hugging Face folder (config.json, model.safetensors written by
save_pretrained) and expected.safetensors holding input_ids and the f32 logits of every position
from transformers' Qwen2ForCausalLM / LlamaForCausalLM; and grads.safetensors for the trainer's
gradient check (tests/train_grads.rs): a batch of two rows (`input_ids`, `labels` with -100 where
the loss is masked, the second row right-padded), the mean cross-entropy over the unmasked
next-token labels as transformers computes it (`loss`), and the gradient of that loss for every
parameter (`grad.<parameter name>`; a tied head's gradient is folded into the embedding's).

Qwen3 needs transformers >= 4.51 (4.51.3 wrote the committed qwen3 fixture). Configs added after
the first two draw from a seed of their own, so `--only qwen3` writes the same files as a full
run and the older fixtures need not be rewritten.

    pip install torch transformers safetensors
    python3 scripts/make_parity_fixtures.py            # writes tests/fixtures/parity/
    python3 scripts/make_parity_fixtures.py --only qwen3
    python3 scripts/make_parity_fixtures.py --attention  # only tests/fixtures/parity/attention.safetensors

`--attention` writes the causal attention reference for tests/attention_parity.rs: for each case
(sequence t, h query heads over kvh kv heads of size 8), `<case>.q` `[t, h, 8]`, `.k` and `.v`
`[t, kvh, 8]` and an upstream gradient `.do` `[t, h, 8]` (inputs rounded to f16 so that they are
stored exactly in half the bytes), and from torch's scaled_dot_product_attention (is_causal,
enable_gqa, computed in f64) the output `.o` and the gradients `.dq`, `.dk`, `.dv` in f32.
"""
import argparse
import pathlib

import torch
from safetensors.torch import save_file
import transformers

# Classes by name, so that a transformers without Qwen3 still writes the others.
CONFIGS = {
    # Qwen2: q/k/v bias, grouped-query attention (4 heads, 2 kv heads), untied head.
    "qwen2": (
        "Qwen2Config",
        "Qwen2ForCausalLM",
        dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, rope_theta=1e6, rms_norm_eps=1e-6,
             tie_word_embeddings=False, max_position_embeddings=512),
    ),
    # Llama: one kv head, tied embeddings, Llama 3 rope scaling (transformers 5 writes it
    # into rope_parameters).
    "llama": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=1, rms_norm_eps=1e-5,
             tie_word_embeddings=True, max_position_embeddings=512,
             rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                               high_freq_factor=4.0, original_max_position_embeddings=64),
             rope_theta=10000.0),
    ),
    # Qwen3: per-head RMSNorm on q and k, no attention bias, head_dim 32 apart from
    # hidden_size / num_attention_heads (16), grouped-query attention, tied head.
    "qwen3": (
        "Qwen3Config",
        "Qwen3ForCausalLM",
        dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, head_dim=32, rope_theta=1e6,
             rms_norm_eps=1e-6, attention_bias=False, tie_word_embeddings=True,
             max_position_embeddings=512),
    ),
}

# Configs added later start from a seed of their own (see the module doc).
SEEDS = {"qwen3": 3}


# (t, heads, kv heads): GQA ratios 1, 2 and 7 at every length up to 1,000; one head at 4,096,
# so that the file stays near 2 MB.
ATTENTION_CASES = [(t, h, kvh) for t in (1, 17, 64) for (h, kvh) in ((2, 2), (4, 2), (7, 1))] + \
    [(1000, h, 1) for h in (1, 2, 7)] + [(4096, 1, 1)]
ATTENTION_HEAD_DIM = 8


def write_attention(out):
    """The scaled_dot_product_attention reference (see the module doc)."""
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(19)
    d = ATTENTION_HEAD_DIM
    tensors = {}
    for t, h, kvh in ATTENTION_CASES:
        name = f"t{t}_h{h}_kv{kvh}"
        # Scores of std ~2 so that the softmax is neither flat nor one-hot.
        q = (2.0 * torch.randn(t, h, d, generator=g)).half()
        k = torch.randn(t, kvh, d, generator=g).half()
        v = torch.randn(t, kvh, d, generator=g).half()
        do = torch.randn(t, h, d, generator=g).half()
        qd, kd, vd = (x.double().transpose(0, 1).unsqueeze(0).requires_grad_() for x in (q, k, v))
        o = F.scaled_dot_product_attention(qd, kd, vd, is_causal=True, enable_gqa=True)
        o.backward(do.double().transpose(0, 1).unsqueeze(0))
        back = lambda x: x.detach()[0].transpose(0, 1).float().contiguous()  # noqa: E731
        tensors.update({f"{name}.q": q.contiguous(), f"{name}.k": k.contiguous(), f"{name}.v": v.contiguous(),
                        f"{name}.do": do.contiguous(), f"{name}.o": back(o), f"{name}.dq": back(qd.grad),
                        f"{name}.dk": back(kd.grad), f"{name}.dv": back(vd.grad)})
    path = pathlib.Path(out) / "attention.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    print(f"attention: {len(ATTENTION_CASES)} cases -> {path} ({path.stat().st_size} bytes)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/parity"))
    ap.add_argument("--seq-len", type=int, default=24)
    ap.add_argument("--only", action="append", choices=sorted(CONFIGS),
                    help="write only these fixtures (those with a seed of their own: %s)" % ", ".join(SEEDS))
    ap.add_argument("--attention", action="store_true",
                    help="write only the attention reference (attention.safetensors)")
    args = ap.parse_args()
    if args.attention:
        write_attention(args.out)
        return
    for name in args.only or []:
        if name not in SEEDS:
            ap.error(f"{name} draws from the shared seed; regenerate it with a full run")
    torch.manual_seed(1234)
    for name, (cfg_name, model_name, kw) in CONFIGS.items():
        if name in SEEDS:
            torch.manual_seed(SEEDS[name])
        if args.only and name not in args.only:
            continue
        cfg_cls, model_cls = getattr(transformers, cfg_name), getattr(transformers, model_name)
        cfg = cfg_cls(**kw)
        cfg._attn_implementation = "eager"
        model = model_cls(cfg).eval().to(torch.float32)
        # Large random weights (and non-zero biases and norms) so that attention patterns,
        # rotary phases and every bias matter to the logits.
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" in pname:
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
                elif pname.endswith("bias"):
                    p.copy_(0.1 * torch.randn_like(p))
                else:
                    p.copy_(0.15 * torch.randn_like(p))
        out = pathlib.Path(args.out) / name
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        ids = torch.randint(0, cfg.vocab_size, (1, args.seq_len))
        with torch.no_grad():
            logits = model(input_ids=ids).logits.float()
        save_file({"input_ids": ids.to(torch.int64).contiguous(), "logits": logits.contiguous()},
                  str(out / "expected.safetensors"))
        # Gradients, from a generator of their own so the fixtures above stay as they were.
        g = torch.Generator().manual_seed(99)
        t = args.seq_len
        gids = torch.randint(0, cfg.vocab_size, (2, t), generator=g)
        labels = gids.clone()
        labels[:, :5] = -100  # a prompt: no loss
        labels[1, t - 6:] = -100  # right padding on the second row
        mask = torch.ones_like(gids)
        mask[1, t - 6:] = 0
        model.train()
        model.zero_grad()
        loss = model(input_ids=gids, labels=labels).loss
        loss.backward()
        grads = {"input_ids": gids.to(torch.int64).contiguous(), "labels": labels.to(torch.int64).contiguous(),
                 "loss": loss.detach().float().reshape(1).contiguous()}
        for pname, p in model.named_parameters():
            grads["grad." + pname] = p.grad.detach().float().contiguous()
        save_file(grads, str(out / "grads.safetensors"))
        model.eval()
        for extra in ("generation_config.json",):
            p = out / extra
            if p.exists():
                p.unlink()
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {out}")


if __name__ == "__main__":
    main()
