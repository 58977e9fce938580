#!/usr/bin/env python3
"""Calibrate `--min-answer` on reader verdicts (issue 25): how well the model's P(yes) to "does
this sentence answer the question?" separates questions a reader judged answered from the rest,
and how many questions a paper keeps, and how many of them answered, at each threshold.

Usage: calibrate_answers.py JUDGED.jsonl [--papers a,b,c] [--threads N]
  JUDGED: one judged question a line, {"paper", "title", "question_en" (the English the question
  asks), "sentences" (its answer's English), "answers_question" (the reader's verdict), ...};
  benchmarks/data/answers_judged.jsonl holds 387: 216 of 12 corpus papers (two versions each),
  36 of 4 papers judged after the threshold was chosen (1609.09430, 1912.07559, 2203.06947,
  2301.05217), and 135 of 8 papers judged in the fifth pass (those 4 and 1412.6980, 2304.14933,
  2206.10883, 2203.00274; versions febade6 and b8b9a75);
  benchmarks/data/question_wordings_judged.jsonl: 277 questions of three wordings over the same
  108 sentences (its "from" says which wording).
  --papers: only these papers (prefixes of "paper"), e.g. the calibration papers alone.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from localdigest.backends import load_backend
from localdigest.config import Settings
from localdigest.generate.digester import TASK_TOKENS
from localdigest.generate.questions import answer_check
from localdigest.generate.select import says_yes
from localdigest.generate.tasks import StageLog, TaskRunner
from localdigest.prompts import PromptSet

MODEL = "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"  # the default model, installed
THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def probabilities(items: list[dict], threads: int) -> list[float]:
    """P(yes) of each judged question, read as the digest reads it."""
    settings = Settings(model=MODEL, threads=threads)
    runner = TaskRunner(load_backend(settings, TASK_TOKENS), settings, StageLog())
    prompts = PromptSet()
    chats = [answer_check(prompts, x["title"], x["sentences"], x["question_en"]) for x in items]
    return says_yes(runner, "question", chats)


def auc(positives: list[float], negatives: list[float]) -> float:
    """P(score of a positive > score of a negative), ties counted half."""
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    return sum(pairs) / len(pairs) if pairs else float("nan")


def report(items: list[dict], yes: list[float]) -> None:
    answered = [p for p, x in zip(yes, items, strict=True) if x["answers_question"]]
    others = [p for p, x in zip(yes, items, strict=True) if not x["answers_question"]]
    digests = {(x["paper"], x.get("version", "")) for x in items}
    print(f"{len(items)} judged questions of {len(digests)} digests, answered "
          f"{len(answered) / len(items):.2f}; AUC of P(yes) {auc(answered, others):.2f}")  # fmt: skip
    print("threshold  kept  a digest  answered-of-kept")
    for threshold in THRESHOLDS:
        kept = [x for p, x in zip(yes, items, strict=True) if p >= threshold]
        share = sum(x["answers_question"] for x in kept) / len(kept) if kept else float("nan")
        print(f"{threshold:9.2f}  {len(kept):4d}  {len(kept) / len(digests):8.1f}  {share:16.2f}")


if __name__ == "__main__":
    args = sys.argv[1:]
    rows = [json.loads(line) for line in Path(args[0]).read_text().splitlines()]
    options = defaultdict(str, zip(args[1::2], args[2::2], strict=True))
    if options["--papers"]:
        rows = [r for r in rows if r["paper"].startswith(tuple(options["--papers"].split(",")))]
    report(rows, probabilities(rows, int(options["--threads"] or 0)))
