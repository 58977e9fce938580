#!/usr/bin/env python3
"""Calibrate `min_score` on reader verdicts (issue 22): how well the model's score of a
translation separates renderings a blind reader judged wrong, and what share would be shown in
Japanese, and how many of those wrong, at each threshold.

Usage: calibrate_score.py RECORDS_DIR JUDGED.json [JUDGED2.json ...]
  RECORDS_DIR: records of a run with a `--min-score` below every score (all scored in Japanese);
  JUDGED: a blind reader's ratings (BRIEF-sentences.md) of the blind.json beside it, which
  `../shared/judge/sentences.py make DIR run=RECORDS_DIR` wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from localdigest.render import load_records


def scores_by_source(records_dir: Path) -> dict[str, float]:
    """English source sentence -> the score of its rendering (the same in every stage)."""
    found: dict[str, float] = {}
    for record in load_records([records_dir], every=True):
        for pair in record.abstract_sentences:
            if pair.score is not None and not pair.untranslated:
                found[pair.source] = pair.score
        for qa in record.qa:
            if len(qa.evidence) == 1 and qa.score is not None and not qa.english_shown:
                found[qa.evidence[0].text] = qa.score
    return found


def auc(positives: list[float], negatives: list[float]) -> float:
    """P(score of a positive > score of a negative), ties counted half."""
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    return sum(pairs) / len(pairs) if pairs else float("nan")


def main(records_dir: str, *judged_paths: str) -> None:
    scores = scores_by_source(Path(records_dir))
    rated = []  # (score, verdict)
    for path in judged_paths:
        blind_text = (Path(path).parent / "blind.json").read_text(encoding="utf-8")
        blind = {b["n"]: b for b in json.loads(blind_text)}
        for item in json.loads(Path(path).read_text(encoding="utf-8")):
            source = blind[item["n"]]["source"]
            (verdict,) = {r["faithful"] for r in item["ratings"].values()}
            if verdict != "english" and source in scores:
                rated.append((scores[source], verdict))
    wrong = [s for s, v in rated if v == "no"]
    right = [s for s, v in rated if v != "no"]
    faithful = [s for s, v in rated if v == "yes"]
    rest = [s for s, v in rated if v != "yes"]
    print(f"{len(rated)} rated renderings with a score; wrong {len(wrong)}")
    print(
        f"AUC not-wrong vs wrong {auc(right, wrong):.2f}; faithful vs rest {auc(faithful, rest):.2f}"
    )
    print("threshold  shown  wrong-of-shown  faithful-of-shown")
    for threshold in sorted({round(s, 1) for s, _ in rated}):
        shown = [v for s, v in rated if s >= threshold]
        if shown:
            print(
                f"{threshold:9.2f}  {len(shown) / len(rated):5.2f}  "
                f"{shown.count('no') / len(shown):14.2f}  {shown.count('yes') / len(shown):17.2f}"
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
