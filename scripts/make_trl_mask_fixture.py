#!/usr/bin/env python3
"""Writes tests/fixtures/trl_mask.json: s1's training text, token ids and loss mask for a few
real s1K questions, made the way s1 makes them, for tests/train_s1_data.rs.

s1 (simplescaling/s1 @ 77272c6) renders each row with data/tokenization.py's
process_cot_example through Qwen2.5-32B-Instruct's chat template (its default system prompt),
then train/sft.py tokenizes the `text` column with TRL 0.12's SFTTrainer (add_special_tokens=True,
truncation at block_size) and masks the labels with trl.DataCollatorForCompletionOnlyLM
(instruction_template "<|im_start|>user", response_template "<|im_start|>assistant\n", pad token
"<|fim_pad|>"). This script re-implements process_cot_example (same strings, same order: the
"Answer: " prefix is added when the attempt has no "Answer:", and the strip comes after it) and runs
transformers' apply_chat_template, the tokenizer call SFTTrainer makes and TRL's own collator.

The shared s1K file (../shared/data/s1k) holds the real questions and solutions but no thinking
trajectories or attempts, so each row's trajectories and attempt are made from its solution
(see ROWS), with the edge cases of point 3 of issue 14: several trajectories, leading and trailing
whitespace, an attempt with and without "Answer:".

The tokenizer is ../shared/data/tokenizer/qwen3 (Qwen3's files: the same vocabulary and merges as
Qwen2.5). Its tokenizer_config.json holds Qwen3's chat template, so the template is passed
explicitly: assets/chat_templates/qwen2.5.jinja, the no-tools branch of Qwen2.5-Instruct's
template (the branch apply_chat_template runs when no tools are given).

    /work/pyref/bin/python scripts/make_trl_mask_fixture.py   # torch, transformers 4.46.1, trl 0.12.0
"""
import argparse
import json
import pathlib

import transformers
import trl
from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
BLOCK_SIZE = 32768  # sft.py --block_size, SFTTrainer's max_seq_length


def rows_from_s1k(path):
    """(id, question, trajectories, attempt) for the fixture's rows, from the real s1K file."""
    by_id = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            by_id[r["id"]] = r
    out = []
    # Row 0: two trajectories (the solution cut at a paragraph), trailing spaces on the first,
    # an attempt with leading spaces and a trailing newline and no "Answer:".
    sol = by_id[0]["solution"]
    paras = sol.split("\n\n")
    k = max(1, len(paras) // 2)
    out.append((0, ["\n\n".join(paras[:k]) + "  ", "\n\n".join(paras[k:])], "  " + paras[-1] + "\n"))
    # Row 15: one trajectory with leading newlines; the attempt already has "Answer:" (not prefixed).
    sol = by_id[15]["solution"]
    out.append((15, ["\n\n" + sol], "\nThe balance is computed above.\nFinal Answer: " + sol.split()[-1] + " \n"))
    # Row 1: a final-answer-only solution; the attempt " 128 " becomes "Answer:  128" (strip after
    # the prefix keeps the inner double space; "Answer: " + attempt.strip() would not).
    sol = by_id[1]["solution"]
    out.append((1, ["Let me count the cases.", "", "So the count is " + sol + ".  "], " " + sol + " "))
    # Row 36: a chemistry solution as the trace, and an answer naming "answer:" in lower case
    # (only the exact "Answer:" stops the prefix).
    sol = by_id[36]["solution"]
    out.append((36, [sol], "The final answer: " + sol.split(".")[0] + "."))
    return [(i, by_id[i]["question"], t, a) for i, t, a in out]


def process_cot_example(question, trajectories, attempt, tokenizer, template):
    """data/tokenization.py's process_cot_example, re-implemented."""
    prompt = question  # QUERY_TEMPLATE_NOANSWER is "{Question}"
    answer = "Answer: " + attempt if "Answer:" not in attempt else attempt
    assistant = "<|im_start|>think\n" + "\n".join(trajectories).strip() + "\n<|im_start|>answer\n" + answer.strip()
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": assistant}],
        tokenize=False,
        chat_template=template,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/trl_mask.json"))
    args = ap.parse_args()
    template = (ROOT / "assets/chat_templates/qwen2.5.jinja").read_text()
    tokenizer = AutoTokenizer.from_pretrained(str(DATA / "tokenizer/qwen3"), use_fast=True)
    tokenizer.pad_token = "<|fim_pad|>"  # sft.py, for Qwen
    collator = trl.DataCollatorForCompletionOnlyLM(
        instruction_template="<|im_start|>user",
        response_template="<|im_start|>assistant\n",
        tokenizer=tokenizer,
        mlm=False,
    )
    rows = rows_from_s1k(DATA / "s1k/s1K_questions_solutions.jsonl")
    texts = [process_cot_example(q, t, a, tokenizer, template) for _, q, t, a in rows]
    # SFTTrainer 0.12's tokenize(): add_special_tokens=True, truncation=True, max_length=block_size.
    enc = tokenizer(texts, add_special_tokens=True, truncation=True, padding=False, max_length=BLOCK_SIZE)
    features = [{"input_ids": ids, "attention_mask": m} for ids, m in zip(enc["input_ids"], enc["attention_mask"])]
    # s1 runs micro-batches of one; the rows are also collated together (right padding with
    # <|fim_pad|>) to check that padding only adds masked positions.
    singles = [collator([f]) for f in features]
    together = collator(features)
    out_rows = []
    for i, ((sid, q, t, a), text, f, one) in enumerate(zip(rows, texts, features, singles)):
        n = len(f["input_ids"])
        labels = one["labels"][0].tolist()
        assert one["input_ids"][0].tolist() == f["input_ids"]
        assert together["labels"][i][:n].tolist() == labels
        assert all(v == -100 for v in together["labels"][i][n:].tolist())
        out_rows.append(
            {
                "s1k_id": sid,
                "question": q,
                "trajectories": t,
                "attempt": a,
                "text": text,
                "input_ids": f["input_ids"],
                "labels": labels,
            }
        )
        trained = sum(1 for v in labels if v != -100)
        print(f"s1K row {sid}: {n} tokens, {trained} in the loss")
    fixture = {
        "made_by": "scripts/make_trl_mask_fixture.py",
        "versions": {"transformers": transformers.__version__, "trl": trl.__version__},
        "template": "assets/chat_templates/qwen2.5.jinja",
        "tokenizer": "../shared/data/tokenizer/qwen3/tokenizer.json",
        "block_size": BLOCK_SIZE,
        "rows": out_rows,
    }
    pathlib.Path(args.out).write_text(json.dumps(fixture, ensure_ascii=False, indent=None) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
