"""Runs s1's own answer extraction over a list of responses and writes what it reads to
tests/fixtures/s1_extraction.json, which tests/grade_s1_fixture.rs compares with the studio's
re-implementation (src/grade/s1.rs).

Usage (from the repository root; the standard library only):

    python3 scripts/make_s1_extraction_fixture.py /path/to/simplescaling-s1

where the argument is a checkout of simplescaling/s1 (commit 77272c6). The functions
`process_results`, `last_boxed_only_string` and `remove_boxed` and the constant `ANSWER_PATTERN`
are taken out of s1's eval/lm-evaluation-harness/lm_eval/tasks/{aime,gpqa/openai}/utils.py with
`ast` and run unchanged, with PROCESSOR unset (no gpt-4o-mini judge; openai_math's extraction is
aime's, its process_results refuses to run without the judge). Nothing of s1's code is copied
here.

The cases are hand-written ones (each rule of the extraction, the forced `Final Answer:` form)
and real outputs of SmolLM2-135M-Instruct (GGUF) under a thinking budget of 16 tokens, as the
studio's sweep generated them (the continuation s1 grades: thinking start, thinking, answer
delimiter or the forced `\\n<|im_start|>answer\\nFinal Answer:`, answer).
"""

import ast
import collections
import contextlib
import io
import json
import os
import re
import sys
import typing

HAND = [
    # (kind, response, reference)
    ("aime", "<|im_start|>think\nLet me see\n<|im_start|>answer\nFinal Answer: 204", "204"),
    ("aime", "<|im_start|>think\nx\n<|im_start|>answer\nFinal Answer: 023", "23"),
    ("aime", "<|im_start|>think\nx\n<|im_start|>answer\nFinal Answer: 23", "023"),
    ("aime", "<|im_start|>think\nx\n<|im_start|>answer\nFinal Answer:\n\n  204\n", "204"),
    ("aime", "<|im_start|>think\n\\boxed{1}<|im_start|>answer\nFinal Answer: 12\nso the Answer: 13", "12"),
    ("aime", "<|im_start|>think\nx<|im_start|>answer\nThe answer is $\\boxed{033}$.", "33"),
    ("aime", "<|im_start|>think\nx<|im_start|>answer\n\\boxed{5} then \\boxed{7}", "7"),
    ("aime", "<|im_start|>answer\nANSWER :\n\n 7", "7"),
    ("aime", "<|im_start|>answer\nAn\u017fwer: 7", "7"),
    ("aime", "<|im_start|>answer\nanswered: 7", "7"),
    ("aime", "t<|im_start|>answer The end\nAnswer: 5", "5"),
    ("aime", "t<|im_start|>answer", "5"),
    ("aime", "no delimiter at all, Answer: 9", "9"),
    ("aime", "no delimiter \\boxed{8} and Answer: 9", "8"),
    ("math", "<|im_start|>answer\n$\\boxed 5$ apples", "5"),
    ("math", "<|im_start|>answer\n\\boxed 5 apples\nmore", "5"),
    ("math", "<|im_start|>answer\n\\boxed 5$ then \\boxed{6}", "5"),
    ("math", "<|im_start|>answer\n\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("math", "<|im_start|>answer\nso \\boxed{(3, \\frac{\\pi}{2})}.", "(3, \\frac{\\pi}{2})"),
    ("math", "<|im_start|>answer\n\\boxed{unbalanced", "1"),
    ("math", "<|im_start|>answer\n\\boxed{}", "1"),
    ("math", "<|im_start|>answer\n\\boxed{5} and \\fbox{4}", "5"),
    ("math", "<|im_start|>answer\nFinal Answer: $\\frac{1}{2}$", "\\frac{1}{2}"),
    ("math", "<|im_start|>answer\n", "1"),
    ("math", "<|im_start|>answer\nFinal Answer:", "1"),
    # s1's remove_boxed fails an assert on these (the whole run stops)
    ("math", "<|im_start|>answer\n\\fbox{4}", "4"),
    ("math", "<|im_start|>answer\n\\boxed\\frac{1}{2}", "1"),
    ("gpqa", "<|im_start|>think\nhmm\n<|im_start|>answer\nFinal Answer: c", "C"),
    ("gpqa", "<|im_start|>think\nhmm\n<|im_start|>answer\nFinal Answer: B", "B"),
    ("gpqa", "<|im_start|>answer\nThe answer is \\boxed{D}", "D"),
    ("gpqa", "<|im_start|>answer\nFinal Answer: (B) 7", "B"),
    ("gpqa", "<|im_start|>answer\nI do not know", "A"),
    ("gpqa", "<|im_start|>answer\nI do not know", "B"),
]

# Real forced outputs: SmolLM2-135M-Instruct Q4_1, `s1-studio eval --max-thinking 16
# --max-tokens 40` (64 for the multiple-choice file) on aime24, math500, gsm8k (graded as math
# here: s1 has no GSM8K task) and a 4-question GPQA-format file, greedy.
REAL = [
    ("aime", "<|im_start|>thinker\nThe walk takes her $t$ minutes, including $t$ minutes\n<|im_start|>answer\nFinal Answer: 2\n\nThe walk takes her $t$ minutes, including $t$ minutes spent in the coffee shop.", "204"),
    ("aime", "<|im_start|>thinker\n<|im_start|>answer\nThe problem of finding the sum of the squares of the circumradius of a triangle inscribed in a circle is a classic example of a geometric problem that can be solved using algebraic techniques. In this case, we can use the Pythagorean theorem to find the circumradius of the triangle.\n\n", "113"),
    ("aime", "<|im_start|>thinker\nYou are given a cube with a side length of $100\n<|im_start|>answer\nFinal Answer: 100", "371"),
    ("math", "<|im_start|>thinker\n<|im_start|>answer\nThe point $(0,3)$ is a point in rectangular coordinates that can be expressed as $(0,3)$ in polar coordinates.", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("math", "<|im_start|>thinker\nTo find a way to write a sum of $p$ and $\n<|im_start|>answer\nFinal Answer:", "p - q"),
    ("math", "<|im_start|>thinker\nThe given function is $f(x) = \\frac{3\n<|im_start|>answer\nFinal Answer:", "\\frac{14}{3}"),
    ("math", "<|im_start|>thinker\n<|im_start|>answer\n196 = 196 \u00d7 1 = 196 \u00d7 1 = 196\n\nThe answer is 196", "9"),
    ("math", "<|im_start|>thinker\n16 eggs * 3 eggs per day = 48 eggs\n<|im_start|>answer\nFinal Answer: 16 eggs * 4 = 64 eggs\nDoll", "18"),
    ("math", "<|im_start|>thinker\n1\n2\n\nThe robe takes 2 bolts of blue fiber\n<|im_start|>answer\nFinal Answer: 2", "3"),
    ("math", "<|im_start|>thinker\nTo find the profit, we need to calculate the difference between the original\n<|im_start|>answer\nFinal Answer: 150%\n\nThis is the profit made by Josh when", "70000"),
    ("math", "<|im_start|>thinker\n1. 60 meters = 100 meters\n2\n<|im_start|>answer\nFinal Answer: 100 + 60 = 70 meters\nJames", "540"),
    ("gpqa", "<|im_start|>thinker\n1. Oxygen is a gas that makes up most of Earth's atmosphere\n<|im_start|>answer\nFinal Answer:", "B"),
    ("gpqa", "<|im_start|>thinker\nThe chemical symbol of gold is Ag. This is a standard chemical symbol\n<|im_start|>answer\nFinal Answer:", "B"),
    ("gpqa", "<|im_start|>thinker\n<|im_start|>answer\n", "C"),
]

WANTED = {"process_results", "last_boxed_only_string", "remove_boxed"}


def load(path):
    """s1's process_results and helpers from one utils.py, run in a namespace of their own."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    body = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in WANTED:
            body.append(node)
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ANSWER_PATTERN" for t in node.targets):
            body.append(node)
    module = ast.Module(body=body, type_ignores=[])
    ns = {
        "re": re,
        "os": os,
        "Counter": collections.Counter,
        "Dict": typing.Dict,
        "List": typing.List,
        "Optional": typing.Optional,
        "Any": typing.Any,
    }
    exec(compile(module, path, "exec"), ns)
    return ns


def run(ns, doc, response):
    """s1's process_results on one response: (extracted answer, exact_match) or the error."""
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            m = ns["process_results"](doc, [response])
            return {"extracted": m["extracted_answers"][0], "exact_match": m["exact_match"]}
        except Exception as e:  # s1's asserts: the evaluation stops
            return {"error": type(e).__name__}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.environ.pop("PROCESSOR", None)
    tasks = os.path.join(sys.argv[1], "eval/lm-evaluation-harness/lm_eval/tasks")
    aime = load(os.path.join(tasks, "aime/utils.py"))
    gpqa = load(os.path.join(tasks, "gpqa/openai/utils.py"))
    cases = []
    for source, rows in (("hand", HAND), ("smollm2", REAL)):
        for kind, response, reference in rows:
            # The raw extraction: a reference that is no digit string turns off the int rule.
            raw = run(aime, {"answer": "\u0000not a digit"}, response)
            case = {"source": source, "kind": kind, "response": response, "reference": reference}
            case["raw"] = raw.get("extracted")
            if "error" in raw:
                case["error"] = raw["error"]
            elif kind == "gpqa":
                r = run(gpqa, {"answer": reference}, response)
                case["s1_answer"], case["s1_correct"] = r["extracted"], r["exact_match"] == 1
                # Without the judge s1 decides alone only on a lone letter.
                case["decided_without_judge"] = case["raw"] in ["a", "b", "c", "d", "A", "B", "C", "D"]
            else:
                r = run(aime, {"answer": reference}, response)
                case["s1_answer"], case["s1_correct"] = r["extracted"], r["exact_match"] == 1
                gt = str(int(reference)) if reference.isdigit() else reference
                case["decided_without_judge"] = case["raw"].isdigit() and gt.isdigit()
            cases.append(case)
    out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "s1_extraction.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"s1_commit": "77272c6", "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
