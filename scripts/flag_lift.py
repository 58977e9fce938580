#!/usr/bin/env python3
"""Which problem kinds are worth showing a reader (issue 22): today's checks run again on every
blind-judged rendering, and per kind the share of its renderings the reader judged wrong,
against renderings with no problem at all. A kind is worth a flag where that share is at least
twice the unflagged one (checks.CHECKS gives it a label).

Usage: flag_lift.py BLIND_DIR JUDGED.json [JUDGED2.json ...]  (from ../shared/judge/sentences.py)
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from localdigest.generate import checks
from localdigest.record import UNTRANSLATED


def main(blind_dir: str, *judged_paths: str) -> None:
    blind = {
        b["n"]: b for b in json.loads((Path(blind_dir) / "blind.json").read_text(encoding="utf-8"))
    }
    per_kind: dict[str, list[str]] = defaultdict(list)
    unflagged: list[str] = []
    for path in judged_paths:
        for item in json.loads(Path(path).read_text(encoding="utf-8")):
            source = blind[item["n"]]["source"]
            for label, rating in item["ratings"].items():
                text = blind[item["n"]]["translations"][label]
                if rating["faithful"] == "english" or text.startswith(UNTRANSLATED):
                    continue
                found = checks.translation_problems(source, text, truncated=False)
                kinds = {p.kind for p in found}
                for kind in kinds:
                    per_kind[kind].append(rating["faithful"])
                if not kinds:
                    unflagged.append(rating["faithful"])
    base = unflagged.count("no") / max(1, len(unflagged))
    print(f"no problem: {len(unflagged)} renderings, judged wrong {base:.2f}")
    print(f"{'kind':40s} {'n':>4s} {'wrong':>6s} {'lift':>5s} {'faithful':>8s}  shown now")
    for kind, verdicts in sorted(per_kind.items(), key=lambda kv: -len(kv[1])):
        wrong = verdicts.count("no") / len(verdicts)
        print(
            f"{kind[:40]:40s} {len(verdicts):4d} {wrong:6.2f} {wrong / base if base else 0:5.1f} "
            f"{verdicts.count('yes') / len(verdicts):8.2f}  {checks.row(kind).label is not None}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
