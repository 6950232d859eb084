#!/usr/bin/env python3
"""Writes the LoRA fixture for tests/train_lora.rs with PyTorch + transformers + peft.

Takes the Qwen2 parity fixture (tests/fixtures/parity/qwen2), attaches LoRA adapters (r 4,
alpha 8, on q_proj, v_proj and down_proj) with random non-zero A and B, and writes
tests/fixtures/lora/adapter/ (peft's adapter_config.json + adapter_model.safetensors) and
tests/fixtures/lora/expected.safetensors: on the batch of grads.safetensors, the loss, the
gradient of every adapter weight (`grad.<peft name>`), and the logits of the adapted model
(`logits`, which the merged model must reproduce).

    pip install torch transformers safetensors peft
    python3 scripts/make_lora_fixture.py
"""
import pathlib

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

root = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures"
base = root / "parity/qwen2"
out = root / "lora"
torch.manual_seed(4321)
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
model.config._attn_implementation = "eager"
cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0,
                 bias="none", task_type="CAUSAL_LM")
model = get_peft_model(model, cfg)
with torch.no_grad():
    for n, p in model.named_parameters():
        if "lora_" in n:
            p.copy_(0.2 * torch.randn_like(p))
batch = load_file(str(base / "grads.safetensors"))
ids, labels = batch["input_ids"], batch["labels"]
model.train()
loss = model(input_ids=ids, labels=labels).loss
loss.backward()
expected = {"loss": loss.detach().reshape(1).contiguous()}
for n, p in model.named_parameters():
    if p.requires_grad:
        expected["grad." + n.replace(".default", "")] = p.grad.detach().contiguous()
model.eval()
with torch.no_grad():
    expected["logits"] = model(input_ids=ids).logits.float().contiguous()
expected["input_ids"] = ids.contiguous()
out.mkdir(parents=True, exist_ok=True)
model.save_pretrained(out / "adapter")
# A portable fixture: the base given relative to the adapter folder, no generated model card.
conf = out / "adapter" / "adapter_config.json"
c = __import__("json").loads(conf.read_text())
c["base_model_name_or_path"] = "../../parity/qwen2"
conf.write_text(__import__("json").dumps(c, indent=2))
(out / "adapter" / "README.md").unlink(missing_ok=True)
save_file(expected, str(out / "expected.safetensors"))
print(sorted(k for k in expected if k.startswith("grad."))[:3], "loss", float(loss))
