#!/usr/bin/env python3
"""Calibrate `--min-answer` on reader verdicts (issue 25): how well the model's reading of a
question as answered by its sentence (`questions.answered`: the mean of P(yes) to "does this
sentence answer the question?" and P(not "NONE") to "copy the part of the sentence that answers
it") separates questions a reader judged answered from the rest,
and how many questions a paper keeps, and how many of them answered, at each threshold.

Usage: calibrate_answers.py JUDGED.jsonl... [--papers a,b,c | --except a,b,c] [--threads N]
       calibrate_answers.py JUDGED.jsonl... --recorded
  JUDGED: one judged question a line, {"paper", "title", "question_en" (the English the question
  asks), "sentences" (its answer's English), "answers_question" (the reader's verdict), ...};
  benchmarks/data/answers_judged.jsonl holds 752: 216 of 12 corpus papers (two versions each),
  36 of 4 papers judged after the threshold was chosen (1609.09430, 1912.07559, 2203.06947,
  2301.05217), 135 of 8 papers judged in the fifth pass (those 4 and 1412.6980, 2304.14933,
  2206.10883, 2203.00274; versions febade6 and b8b9a75) and 61 of the same 8 in the sixth
  (version 8fb0d13); and 124 of 8 papers outside the corpus, judged in the seventh pass
  (versions 6d203b6 and 547df72; these rows also hold "p_answers", the reading when digested,
  and "outside_corpus": true); and 48 of 8 other papers outside the corpus, judged in the eighth
  (version 9546f1a; the same fields); and 73 of 9 more outside papers judged in the ninth (61
  of version 817fe84, and the 12 of 1c8e8ed's two digests that differ from it); and 59 of 10
  more outside papers judged in the tenth (version de9dc54);
  benchmarks/data/question_wordings_judged.jsonl: 378 questions of four wordings over the same
  108 sentences of the 12 (its "from" says which wording: question.j2, question_whole.j2, the
  aspect's own, span-first).
  Several files are read as one, each (question, sentences) once.
  --papers: only these papers (prefixes of "paper"), e.g. the calibration papers alone;
  --except: all but these. The sixth pass (benchmarks/README.md) calibrated on both files
  --except the 8 papers named above (317 questions) and tested on them (--papers, 102).
  --recorded: no model; the reading recorded when each judged question was digested ("p_answers",
  rows of the seventh pass on), each question of each digest (paper, version) once, read at the
  thresholds above the default (below it nothing was asked): what a higher `--min-answer` would
  trade (tenth pass: answered 0.9 only at 0.95, with 2.5 questions a digest).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from localdigest.backends import load_backend
from localdigest.config import Settings
from localdigest.generate.digester import TASK_TOKENS
from localdigest.generate.questions import answered
from localdigest.generate.tasks import StageLog, TaskRunner
from localdigest.prompts import PromptSet

MODEL = "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"  # the default model, installed
THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)
RECORDED_THRESHOLDS = (0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96)


def probabilities(items: list[dict], threads: int) -> list[float]:
    """How surely the model reads each judged question as answered, as the digest reads it."""
    settings = Settings(model=MODEL, threads=threads)
    runner = TaskRunner(load_backend(settings, TASK_TOKENS), settings, StageLog())
    prompts = PromptSet()
    return answered(
        runner, prompts, [(x["title"], x["sentences"], x["question_en"]) for x in items]
    )


def auc(positives: list[float], negatives: list[float]) -> float:
    """P(score of a positive > score of a negative), ties counted half."""
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    return sum(pairs) / len(pairs) if pairs else float("nan")


def report(items: list[dict], yes: list[float], thresholds: tuple[float, ...] = THRESHOLDS) -> None:
    answered = [p for p, x in zip(yes, items, strict=True) if x["answers_question"]]
    others = [p for p, x in zip(yes, items, strict=True) if not x["answers_question"]]
    digests = {(x["paper"], x.get("version", "")) for x in items}
    print(f"{len(items)} judged questions of {len(digests)} digests, answered "
          f"{len(answered) / len(items):.2f}; AUC {auc(answered, others):.2f}")  # fmt: skip
    print("threshold  kept  a digest  answered-of-kept")
    for threshold in thresholds:
        kept = [x for p, x in zip(yes, items, strict=True) if p >= threshold]
        share = sum(x["answers_question"] for x in kept) / len(kept) if kept else float("nan")
        print(f"{threshold:9.2f}  {len(kept):4d}  {len(kept) / len(digests):8.1f}  {share:16.2f}")


def judged(paths: list[str], papers: str, others: str) -> list[dict]:
    """The judged questions of the files, each (question, sentences) once, of the `papers` only
    or all but the `others` (comma-separated prefixes of "paper")."""
    rows: dict[tuple[str, ...], dict] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            row = json.loads(line)
            rows.setdefault((row["question_en"], *row["sentences"]), row)
    keep = [
        r for r in rows.values() if not papers or r["paper"].startswith(tuple(papers.split(",")))
    ]
    return [r for r in keep if not others or not r["paper"].startswith(tuple(others.split(",")))]


def recorded(paths: list[str]) -> list[dict]:
    """The judged questions read when digested, each question of each digest once."""
    rows: dict[tuple[str, ...], dict] = {}
    for path in paths:
        for row in map(json.loads, Path(path).read_text().splitlines()):
            if "p_answers" in row:
                key = (row["paper"], row["version"], row["question_en"], *row["sentences"])
                rows.setdefault(key, row)
    return list(rows.values())


if __name__ == "__main__":
    args = sys.argv[1:]
    files = [a for a in args if a.endswith(".jsonl")]
    if "--recorded" in args:
        rows = recorded(files)
        report(rows, [r["p_answers"] for r in rows], RECORDED_THRESHOLDS)
        sys.exit()
    flags = [a for a in args if not a.endswith(".jsonl")]
    options = defaultdict(str, zip(flags[::2], flags[1::2], strict=True))
    rows = judged(files, options["--papers"], options["--except"])
    report(rows, probabilities(rows, int(options["--threads"] or 0)))
