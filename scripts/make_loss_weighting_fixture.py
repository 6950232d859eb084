#!/usr/bin/env python3
"""Writes tests/fixtures/parity/qwen2/weighting.safetensors: the loss and the gradient of every
parameter of the small Qwen2 parity model (tests/fixtures/parity/qwen2, made by
scripts/make_parity_fixtures.py) for one batch of rows of different lengths, under both loss
weightings of the trainer (tests/train_grads.rs checks them):

- `example` (s1's): sft.sh trains with micro-batches of 1 on 16 GPUs and no accumulation, so
  each GPU's loss is transformers' mean over that example's unmasked tokens and the gradients
  are averaged over the GPUs. Here: each row run alone (unpadded) through the model with its
  labels, the row losses averaged, one backward.
- `token`: the batch padded to one tensor and transformers' mean over all its unmasked tokens
  (what one micro-batch holding the whole global batch gives).

Keys: input_ids and labels (the right-padded batch, -100 where no loss), loss.example,
loss.token, grad.example.<parameter>, grad.token.<parameter>.

    /work/pyref/bin/python scripts/make_loss_weighting_fixture.py   # torch, transformers, safetensors

The model's config.json was written by a newer transformers (rope in `rope_parameters`), so the
config is rebuilt here from its values, and the logits are checked against the folder's
expected.safetensors before anything is written.
"""
import argparse
import json
import pathlib

import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2Config, Qwen2ForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load(folder):
    c = json.loads((folder / "config.json").read_text())
    rope = c.get("rope_parameters") or {}
    cfg = Qwen2Config(
        vocab_size=c["vocab_size"],
        hidden_size=c["hidden_size"],
        intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"],
        rope_theta=rope.get("rope_theta", c.get("rope_theta", 10000.0)),
        rms_norm_eps=c["rms_norm_eps"],
        tie_word_embeddings=c["tie_word_embeddings"],
        max_position_embeddings=c["max_position_embeddings"],
    )
    cfg._attn_implementation = "eager"
    model = Qwen2ForCausalLM(cfg).to(torch.float32)
    missing, unexpected = model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    exp = load_file(str(folder / "expected.safetensors"))
    with torch.no_grad():
        logits = model.eval()(input_ids=exp["input_ids"]).logits
    err = (logits - exp["logits"]).abs().max().item()
    assert err < 1e-4, f"the model does not reproduce expected.safetensors (max error {err})"
    return model, cfg


def grads(model):
    return {n: p.grad.detach().float().clone().contiguous() for n, p in model.named_parameters()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "tests/fixtures/parity/qwen2"))
    args = ap.parse_args()
    folder = pathlib.Path(args.model)
    model, cfg = load(folder)
    model.train()
    g = torch.Generator().manual_seed(2024)
    # (length, prompt tokens): 23, 7 and 3 tokens in the loss.
    shapes = [(28, 5), (16, 9), (7, 4)]
    seq = max(n for n, _ in shapes)
    ids = torch.zeros((len(shapes), seq), dtype=torch.int64)
    labels = torch.full((len(shapes), seq), -100, dtype=torch.int64)
    for r, (n, prompt) in enumerate(shapes):
        row = torch.randint(0, cfg.vocab_size, (n,), generator=g)
        ids[r, :n] = row
        labels[r, prompt:n] = row[prompt:]

    # example: each row alone, micro-batch 1, transformers' per-row token mean; mean over rows.
    model.zero_grad()
    per_row = []
    for r, (n, _) in enumerate(shapes):
        per_row.append(model(input_ids=ids[r : r + 1, :n], labels=labels[r : r + 1, :n]).loss)
    loss_example = torch.stack(per_row).mean()
    loss_example.backward()
    g_example = grads(model)

    # token: the padded batch at once, the mean over all its tokens.
    model.zero_grad()
    loss_token = model(input_ids=ids, labels=labels).loss
    loss_token.backward()
    g_token = grads(model)

    out = {
        "input_ids": ids.contiguous(),
        "labels": labels.contiguous(),
        "loss.example": loss_example.detach().float().reshape(1).contiguous(),
        "loss.token": loss_token.detach().float().reshape(1).contiguous(),
    }
    for n in g_example:
        out[f"grad.example.{n}"] = g_example[n]
        out[f"grad.token.{n}"] = g_token[n]
    save_file(out, str(folder / "weighting.safetensors"))
    print(
        f"rows {[n for n, _ in shapes]}, loss example {loss_example.item():.6f}, "
        f"token {loss_token.item():.6f} -> {folder / 'weighting.safetensors'}"
    )


if __name__ == "__main__":
    main()
