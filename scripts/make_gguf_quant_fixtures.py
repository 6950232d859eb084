#!/usr/bin/env python3
"""Writes tests/fixtures/gguf/: tiny random thinking models (Qwen3, an R1-distill-Qwen, a QwQ and an
R1-distill-Llama style model) as Hugging Face folders written by transformers, the same models
converted by llama.cpp's own converter and quantized by llama.cpp (Q4_K_M, Q6_K, Q4_0, Q5_1 and a
Q4_K_M whose 288-wide rows make llama.cpp mix in Q5_0/Q8_0), and llama.cpp's and transformers'
references for tests/gguf_quant_models.rs. Nothing comes from a model hub.

How to rerun (about a minute on 2 cores):

    python3 -m venv /tmp/py && . /tmp/py/bin/activate
    pip install torch transformers==4.51.3 safetensors numpy jinja2 sentencepiece mistral_common
    pip download --no-deps --no-binary llama-cpp-python --dest /tmp/llama llama-cpp-python==0.3.16
    pip install /tmp/llama/llama_cpp_python-0.3.16.tar.gz           # builds llama.cpp (minutes)
    tar xzf /tmp/llama/llama_cpp_python-0.3.16.tar.gz -C /tmp/llama  # its converter and gguf-py
    bash scripts/fetch-test-models.sh                                # models/ggml-vocab-*.gguf
    python scripts/make_gguf_quant_fixtures.py \
        --llama-cpp /tmp/llama/llama_cpp_python-0.3.16/vendor/llama.cpp \
        --qwen-tokenizer ../shared/data/tokenizer/qwen3/tokenizer.json

The output is deterministic (seeded weights, llama.cpp's quantizer): a rerun rewrites the same
bytes. The sizes (about 18 MB in all, most of it the bf16 weights of the three distinct HF
folders and eight GGUF files of about 1M parameters each) follow from N_MERGES and COMMON below:
hidden 256 is the smallest width K-quant blocks divide.

(on the project's machine: `/work/pyq3/bin/python scripts/make_gguf_quant_fixtures.py`, whose
defaults point at /work/llama/llama_cpp_python-0.3.16 and ../shared/data/tokenizer/qwen3).
Qwen3ForCausalLM needs transformers >= 4.51; 4.51.3 wrote the committed files.

What it does:
- Trims Qwen's tokenizer.json to its 256 byte-level tokens, its first N_MERGES merges and their
  results (Qwen numbers merge i's result 256 + i, so ids stay as they were), then appends the special
  tokens each model needs with Qwen's / DeepSeek's added-token flags (<think> and </think> are
  not special, as in Qwen3). The Llama variant gets Llama 3's pre-tokenizer regex, its ignore_merges
  and no NFC normalizer. `tokenizers` checks that each one round-trips.
- Writes each HF folder with save_pretrained (bf16 safetensors of weights that are exactly bf16,
  so that the f32 GGUF, transformers in f32 and the engine all see the same numbers), the trimmed
  tokenizer and the real chat template (assets/chat_templates/, from llama.cpp's
  models/templates), and expected.safetensors: transformers' f32 logits of every position of the
  chat prompt.
- Converts each folder with vendor/llama.cpp/convert_hf_to_gguf.py (its gguf-py on sys.path) to an
  f32 GGUF. The converter identifies a BPE pre-tokenizer by a hash of the tokenizer's output on
  a test text and refuses unknown ones; a trimmed vocabulary hashes differently, so this script
  replaces `TextModel.get_vocab_base_pre` to name the right one (`qwen2` or `llama-bpe`).
- Quantizes with llama_cpp.llama_model_quantize, prints every tensor's type (gguf-py's
  GGUFReader) and records them in llamacpp.json.
- Runs llama-cpp-python on every GGUF (f32 KV cache, as scripts/make_gguf_fixture.py does):
  tokens of a few texts with special tokens, the full last-position logits of the rendered chat
  prompt, and 12 greedy tokens with llama.cpp's top-1/top-2 margin at each step; and its
  tokens for a few chat strings with special tokens on llama.cpp's tokenizer test vocabularies
  (models/ggml-vocab-{qwen2,llama-bpe,llama-spm}.gguf: run scripts/fetch-test-models.sh first).
"""
import argparse
import copy
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
N_MERGES = 700
QWEN_PRE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA3_PRE = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN_SPECIAL = [("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
                ("<think>", False), ("</think>", False)]
R1_SPECIAL = [("<｜begin▁of▁sentence｜>", True), ("<｜end▁of▁sentence｜>", True), ("<｜User｜>", True),
              ("<｜Assistant｜>", True)]
# Room for every special token, the same in every config so that the two qwen2 folders are
# byte-identical weights (git stores them once).
VOCAB = 256 + N_MERGES + 16

TEMPLATES = {
    "qwen3": "Qwen-Qwen3-0.6B.jinja",
    "r1-qwen": "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
    "qwq": "Qwen-QwQ-32B.jinja",
    "r1-llama": "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
}

COMMON = dict(vocab_size=VOCAB, hidden_size=256, intermediate_size=256, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
# name -> (transformers classes, config, seed, tokenizer kind, pre-tokenizer name for llama.cpp)
MODELS = {
    # Qwen3: head_dim 128 apart from hidden / heads (64), as Qwen3-0.6B; tied head.
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM",
              dict(COMMON, head_dim=128, rope_theta=1e6, rms_norm_eps=1e-6, attention_bias=False,
                   tie_word_embeddings=True), 1, "qwen3", "qwen2"),
    # Qwen2 with q/k/v bias and a tied head (as the 1.5B R1 distill); same seed, same weights.
    "r1-qwen": ("Qwen2Config", "Qwen2ForCausalLM",
                dict(COMMON, rope_theta=1e6, rms_norm_eps=1e-5, tie_word_embeddings=True), 2, "r1", "qwen2"),
    "qwq": ("Qwen2Config", "Qwen2ForCausalLM",
            dict(COMMON, rope_theta=1e6, rms_norm_eps=1e-5, tie_word_embeddings=True), 2, "qwen", "qwen2"),
    # Llama 3.1 with its rotary scaling (converted to a rope_freqs tensor), untied head.
    "r1-llama": ("LlamaConfig", "LlamaForCausalLM",
                 dict(COMMON, rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                      rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                        high_freq_factor=4.0, original_max_position_embeddings=64)),
                 4, "r1-llama", "llama-bpe"),
    # Not committed as a folder: 288-wide rows that K-quant blocks (256) do not divide (ffn_down's
    # 512 do), so that llama.cpp's Q4_K_M writes Q5_0 / Q8_0 beside Q4_K / Q6_K.
    "mixed": ("Qwen2Config", "Qwen2ForCausalLM",
              dict(COMMON, hidden_size=288, intermediate_size=512, rope_theta=1e6, rms_norm_eps=1e-6,
                   tie_word_embeddings=False), 5, "qwen", "qwen2"),
}
# (model, llama_ftype name, file name)
QUANTS = [
    ("qwen3", "Q4_K_M"), ("qwen3", "Q6_K"), ("r1-qwen", "Q4_K_M"), ("qwq", "Q4_K_M"),
    ("r1-llama", "Q4_K_M"), ("mixed", "Q4_K_M"), ("r1-qwen", "Q4_0"), ("r1-qwen", "Q5_1"),
]

TEXTS = [
    "Hello world",
    "What is 12345 + 678? Let's compute: 12345+678=13023.",
    "naïve café — déjà vu, 日本語, emoji 🙂!",
    "def f(x):\n    return x**2  # square\n\n\n",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nhm</think>\n\nOK<|im_end|>",
    "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜><think>\nfour\n</think>\n\n4<｜end▁of▁sentence｜>",
]
VOCABS = ["ggml-vocab-qwen2.gguf", "ggml-vocab-llama-bpe.gguf", "ggml-vocab-llama-spm.gguf"]
SPECIAL_TEXTS = [
    "<s>[INST] Hi there [/INST] Hello</s><s>[INST] ok",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|endoftext|> x <s> y</s>\n\n<|im_end|>",
]
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France? Think step by step."}]


def trimmed_tokenizer(src, kind):
    t = json.loads(pathlib.Path(src).read_text())
    model = t["model"]
    merges = model["merges"][:N_MERGES]
    vocab = {tok: i for tok, i in model["vocab"].items() if i < 256 + N_MERGES}
    for i, m in enumerate(merges):
        assert vocab["".join(m)] == 256 + i, m
    specials = QWEN_SPECIAL + (R1_SPECIAL if kind.startswith("r1") else [])
    added = []
    for k, (content, special) in enumerate(specials):
        added.append(dict(id=256 + N_MERGES + k, content=content, single_word=False, lstrip=False,
                          rstrip=False, normalized=False, special=special))
    out = copy.deepcopy(t)
    out["added_tokens"] = added
    out["model"] = dict(model, vocab=vocab, merges=merges)
    if kind == "r1-llama":
        out["normalizer"] = None
        out["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = LLAMA3_PRE
        out["model"]["ignore_merges"] = True  # as Llama 3's tokenizer.json (llama.cpp does the same)
    else:
        assert out["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == QWEN_PRE
    return out, specials


def tokenizer_config(kind, template):
    if kind.startswith("r1"):
        bos, eos, pad, add_bos = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜end▁of▁sentence｜>", True
    else:
        bos, eos, pad, add_bos = None, "<|im_end|>", "<|endoftext|>", False
    return dict(tokenizer_class="PreTrainedTokenizerFast", bos_token=bos, eos_token=eos, pad_token=pad,
                add_bos_token=add_bos, add_eos_token=False, clean_up_tokenization_spaces=False,
                model_max_length=4096, chat_template=template)


def write_hf(name, out, qwen_tok, llama_cpp_dir, torch, transformers):
    cfg_name, model_name, kw, seed, kind, _ = MODELS[name]
    tok, specials = trimmed_tokenizer(qwen_tok, kind)
    ids = {c: 256 + N_MERGES + k for k, (c, _) in enumerate(specials)}
    template = (llama_cpp_dir / "models/templates" / TEMPLATES.get(name, TEMPLATES["qwq"])).read_text()
    tcfg = tokenizer_config(kind, template)
    kw = dict(kw)
    if kind.startswith("r1"):
        kw.update(bos_token_id=ids[tcfg["bos_token"]], eos_token_id=ids[tcfg["eos_token"]])
    else:
        kw.update(bos_token_id=None, eos_token_id=ids["<|im_end|>"])
    torch.manual_seed(seed)
    cfg = getattr(transformers, cfg_name)(**kw)
    cfg._attn_implementation = "eager"
    model = getattr(transformers, model_name)(cfg).eval()
    # Large random weights (and non-zero biases and norms) so that attention patterns, rotary
    # phases and every bias matter to the logits; rounded to bf16 so that the saved bf16 weights
    # are exactly the ones every consumer sees.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif pname.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    model = model.to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False, indent=1))
    (out / "tokenizer_config.json").write_text(json.dumps(tcfg, ensure_ascii=False, indent=1))
    # Round trip and the template, with transformers' own tokenizer on the folder.
    ht = transformers.AutoTokenizer.from_pretrained(out)
    for text in TEXTS:
        enc = ht.encode(text, add_special_tokens=False)
        assert ht.decode(enc) == text, (name, text, ht.decode(enc))
    return ht


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", default="/work/llama/llama_cpp_python-0.3.16/vendor/llama.cpp")
    ap.add_argument("--qwen-tokenizer", default=str(ROOT / "../shared/data/tokenizer/qwen3/tokenizer.json"))
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/gguf"))
    args = ap.parse_args()
    llama_cpp_dir = pathlib.Path(args.llama_cpp)
    sys.path[:0] = [str(llama_cpp_dir), str(llama_cpp_dir / "gguf-py")]
    import numpy as np
    import torch
    import transformers
    from safetensors.torch import save_file
    import convert_hf_to_gguf as conv
    import gguf
    import llama_cpp

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="gguf-fixtures-"))
    for name, file in TEMPLATES.items():
        shutil.copy(llama_cpp_dir / "models/templates" / file, ROOT / "assets/chat_templates" / file)

    refs = {"source": f"llama-cpp-python {llama_cpp.__version__}, transformers {transformers.__version__}, "
                      f"scripts/make_gguf_quant_fixtures.py", "files": {}}
    f32 = {}
    chat_text = {}
    for name in MODELS:
        folder = (work / name) if name == "mixed" else (out / name)
        if folder.exists():
            shutil.rmtree(folder)
        ht = write_hf(name, folder, args.qwen_tokenizer, llama_cpp_dir, torch, transformers)
        chat = ht.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
        chat_text[name] = chat
        if name != "mixed":
            # transformers' logits at every position of the chat prompt, in f32.
            model = getattr(transformers, MODELS[name][1]).from_pretrained(
                folder, torch_dtype=torch.float32, attn_implementation="eager").eval()
            ids = torch.tensor([ht.encode(chat, add_special_tokens=False)])
            with torch.no_grad():
                logits = model(input_ids=ids).logits.float()
            save_file({"input_ids": ids.to(torch.int64).contiguous(), "logits": logits.contiguous()},
                      str(folder / "expected.safetensors"))
            print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {folder}")
        # llama.cpp's converter, told which pre-tokenizer the trimmed vocabulary is.
        pre = MODELS[name][5]
        conv.TextModel.get_vocab_base_pre = lambda self, tokenizer, pre=pre: pre
        f32[name] = work / f"{name}-f32.gguf"
        sys.argv = ["convert_hf_to_gguf.py", str(folder), "--outtype", "f32", "--outfile", str(f32[name])]
        conv.main()

    for name, q in QUANTS:
        dst = out / f"{name}-{q}.gguf"
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{q}")
        params.nthread = 2
        rc = llama_cpp.llama_model_quantize(str(f32[name]).encode(), str(dst).encode(), params)
        assert rc == 0, f"quantizing {dst}: {rc}"
        reader = gguf.GGUFReader(str(dst))
        types = {t.name: t.tensor_type.name for t in reader.tensors}
        counts = {}
        for v in types.values():
            counts[v] = counts.get(v, 0) + 1
        print(f"{dst.name}: {dst.stat().st_size} bytes, {counts}")
        for t, ty in types.items():
            print(f"    {t}: {ty}")

        llm = llama_cpp.Llama(model_path=str(dst), n_ctx=512, n_threads=2, verbose=False, logits_all=True,
                              type_k=0, type_v=0)
        tokens = [llm.tokenize(t.encode(), add_bos=False, special=True) for t in TEXTS]
        chat = chat_text[name]
        chat_ids = llm.tokenize(chat.encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(chat_ids)
        scores = np.array(llm.scores[len(chat_ids) - 1], dtype=np.float32)
        greedy, margins = [], []
        for _ in range(12):
            row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            top2 = np.sort(row)[-2:]
            tok = int(np.argmax(row))
            greedy.append(tok)
            margins.append(float(top2[1] - top2[0]))
            llm.eval([tok])
        refs["files"][dst.name] = {
            "model": name, "ftype": q, "bytes": dst.stat().st_size, "tensor_types": types,
            "type_counts": counts, "tokens": tokens, "chat": chat, "chat_ids": chat_ids,
            "last_logits": [round(float(x), 6) for x in scores], "greedy": greedy, "greedy_margins": margins,
        }
        print(f"    greedy {greedy} margins {[round(m, 3) for m in margins]}")
        del llm
    refs["texts"] = TEXTS
    # llama.cpp's tokenizer test vocabularies (scripts/fetch-test-models.sh puts them in models/):
    # chat strings with special tokens parsed, which llama.cpp's own .inp/.out tests leave out.
    refs["vocab_special"] = {}
    for vocab in VOCABS:
        llm = llama_cpp.Llama(model_path=str(ROOT / "models" / vocab), vocab_only=True, verbose=False)
        refs["vocab_special"][vocab] = [[t, llm.tokenize(t.encode(), add_bos=False, special=True)]
                                        for t in SPECIAL_TEXTS]
        del llm
    (out / "llamacpp.json").write_text(json.dumps(refs, indent=1, ensure_ascii=False))
    shutil.rmtree(work)
    print("wrote", out)


if __name__ == "__main__":
    main()
