"""Every kind of problem our checks report, listed once: what the pipeline does about it.

A problem is a string "<kind>: <detail>" (or "<kind> (<detail>)"); its kind is the text before
the first ':' or '('. This table says, per kind, whether an output with it is generated again
(`objective`: a failure anyone can see without reading the source, never a judgement call),
and whether a reader is shown it beside the item (`shown`) under its Japanese label. A kind is
shown only where reader verdicts measured that it marks renderings judged wrong at least twice
as often as unflagged ones (issue 22, per-kind table in benchmarks/README.md,
`scripts/flag_lift.py`); the others stay in the record, for `localdigest eval`. Objective kinds
are shown where an older record kept Japanese that has one; a new record shows such a
rendering as the marked English instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProblemKind:
    kind: str
    label: str  # Japanese, for a reader
    objective: bool = False  # generated again; what still has it is shown as marked English
    shown: bool = False  # flagged beside the item in the digest


KINDS = (
    ProblemKind("empty", "出力なし", objective=True, shown=True),
    ProblemKind("prompt echoed", "指示文の混入", objective=True, shown=True),
    ProblemKind("not Japanese", "英語のまま", objective=True, shown=True),
    ProblemKind("Chinese", "中国語の混入", objective=True, shown=True),
    ProblemKind("Cyrillic or Hangul", "外国文字の混入", objective=True, shown=True),
    ProblemKind("repeats itself", "繰り返し", objective=True, shown=True),
    ProblemKind("looks truncated", "途中で切れている", objective=True, shown=True),
    ProblemKind("invented word", "辞書にない造語", objective=True, shown=True),
    # the one judgement-call kind measured to mark wrong renderings: wrong 0.44 of 16 against
    # 0.21 unflagged (2.1x) on 84 blind-judged sentences of 8 corpus papers
    ProblemKind("loanword of another word", "原文と異なる外来語", shown=True),
    ProblemKind("English copied", "英語の混入"),
    ProblemKind("English words left", "英語の混入"),
    ProblemKind("garbled term", "崩れた用語", objective=True, shown=True),
    ProblemKind("much shorter", "訳抜けの疑い"),
    ProblemKind("of the source missing", "数値・名称の欠落"),
    ProblemKind("number scale changed", "桁の誤り"),
    ProblemKind("not in the source", "原文にない数値・名称"),
    ProblemKind("not in the abstract", "概要にない数値・名称"),
    ProblemKind("glossary term", "用語が訳語表と不一致"),
    ProblemKind("meaning may differ", "意味のずれの疑い"),  # read-back, records before issue 22
    ProblemKind("characters (want", "長さが不適切"),
    ProblemKind("longer than one", "長さが不適切", objective=True),
    ProblemKind("not one question", "質問の形でない", objective=True),
    ProblemKind("question too long", "長すぎる質問"),
    # worded again, else the aspect's own question is asked (issue 25)
    ProblemKind("question words not in its answer", "回答にない語を含む質問", objective=True),
    ProblemKind("summary source is not English", "要約の原文が英語でない", objective=True),
    ProblemKind("no yes or no", "選択の返答が不正", objective=True),
    ProblemKind("no sentence number", "選択の返答が不正", objective=True),
    ProblemKind("out of range", "選択の返答が不正", objective=True),
)
OTHER = ProblemKind("", "その他の不備")


def kind_of(problem: str) -> ProblemKind:
    """The table's row for a problem string (its kind is a stable part of its text)."""
    head = re.split(r"[:(]", problem)[0]
    found = next((k for k in KINDS if k.kind in head), None)
    return found or next((k for k in KINDS if k.kind in problem), OTHER)


def is_objective(problem: str) -> bool:
    return kind_of(problem).objective


def objective_count(problems: Iterable[str]) -> int:
    return sum(is_objective(p) for p in problems)


def shown_labels(problems: Iterable[str]) -> list[str]:
    """The Japanese labels a reader sees for these problems, once each, in order."""
    return list(dict.fromkeys(k.label for p in problems if (k := kind_of(p)).shown))
