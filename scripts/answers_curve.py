#!/usr/bin/env python3
"""What `--min-answer` would trade, read from reader verdicts without the model (issue 25): the
questions a digest keeps and the share of them readers judged answered, as the threshold rises.

Reads the judged rows that hold "p_answers" (the model's reading when the digest was made; rows
of the seventh pass on), each (paper, version, question, sentences) once; a digest is one
(paper, version). Rows below the threshold in force when digested (0.9) were never asked, so
the curve starts there.

Usage: answers_curve.py [JUDGED.jsonl ...]  (default: benchmarks/data/answers_judged.jsonl)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

THRESHOLDS = (0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96)
DEFAULT = Path(__file__).resolve().parent.parent / "benchmarks/data/answers_judged.jsonl"


def read_rows(paths: list[Path]) -> list[dict]:
    """The judged rows read when digested, each once."""
    rows: dict[tuple, dict] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "p_answers" in row:
                key = (row["paper"], row["version"], row["question_en"], tuple(row["sentences"]))
                rows.setdefault(key, row)
    return list(rows.values())


def main(argv: list[str]) -> None:
    rows = read_rows([Path(a) for a in argv] or [DEFAULT])
    digests = len({(r["paper"], r["version"]) for r in rows})
    print(f"{len(rows)} judged questions of {digests} digests")
    print("| --min-answer | questions kept | per digest | answered |\n|--:|--:|--:|--:|")
    for threshold in THRESHOLDS:
        kept = [r for r in rows if r["p_answers"] >= threshold]
        answered = sum(r["answers_question"] for r in kept) / len(kept) if kept else float("nan")
        print(f"| {threshold} | {len(kept)} | {len(kept) / digests:.1f} | {answered:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
