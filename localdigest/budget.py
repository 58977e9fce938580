"""Choose what of a paper goes into the model's context, counted with the model's own tokenizer.

Sections are taken by priority (abstract, introduction, method, results, conclusion, then the
rest of the body) until the budget is spent; body sections that do not fit are condensed into
notes by a map step when the budget allows, and everything left out is recorded, never cut
silently. References, appendices and acknowledgments are never sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from localdigest.paper import (
    ABSTRACT,
    ACKNOWLEDGMENTS,
    APPENDIX,
    BODY,
    REFERENCES,
    Block,
    Paper,
    Section,
)

# Lower number = higher priority. Matched against the lowercased section title.
_PRIORITIES: tuple[tuple[int, re.Pattern[str]], ...] = (
    (1, re.compile(r"introduction|overview|motivation")),
    (
        2,
        re.compile(
            r"method|approach|model|architecture|framework|algorithm|propos|design|dataset|data"
        ),
    ),
    (3, re.compile(r"result|experiment|evaluation|empirical|finding|analysis|benchmark|ablation")),
    (4, re.compile(r"conclusion|discussion|limitation|future|summary")),
)
_OTHER_BODY = 5
_NEVER_SENT = {REFERENCES: "references", APPENDIX: "appendix", ACKNOWLEDGMENTS: "acknowledgments"}


def section_priority(section: Section) -> int:
    if section.kind == ABSTRACT:
        return 0
    title = section.title.lower()
    return next((p for p, pattern in _PRIORITIES if pattern.search(title)), _OTHER_BODY)


def section_context(section: Section) -> str:
    """A section as context text: its heading, then paragraphs with [p.N] at each page change."""
    heading = " ".join(x for x in (section.number, section.title) if x)
    lines = [f"## {heading}"] if heading else []
    page = None
    for block in section.blocks:
        if block.page != page:
            page = block.page
            lines.append(f"[p.{page}] {block.text}")
        else:
            lines.append(block.text)
    return "\n".join(lines)


@dataclass
class ContextPlan:
    """What the model sees of a paper, and what it does not (with the reason)."""

    verbatim: list[Section] = field(default_factory=list)
    to_condense: list[Section] = field(default_factory=list)  # map step: notes per section
    left_out: list[str] = field(default_factory=list)
    tokens: int = 0  # tokens of the verbatim sections

    def sections_in_order(self, paper: Paper) -> list[Section]:
        chosen = {id(s) for s in self.verbatim + self.to_condense}
        return [s for s in paper.sections if id(s) in chosen]


def _label(section: Section) -> str:
    return " ".join(x for x in (section.number, section.title) if x) or section.kind


def plan_context(
    paper: Paper,
    count_tokens: Callable[[str], int],
    budget: int,
    *,
    notes_tokens: int = 160,
    max_condensed: int = 8,
) -> ContextPlan:
    """Fill `budget` tokens by section priority; plan notes for what does not fit.

    Args:
        count_tokens: the model's tokenizer (Backend.count_tokens).
        budget: tokens available for the paper in the prompt (window minus instructions/output).
        notes_tokens: tokens a condensed section's notes take in the context.
        max_condensed: bound on map-step calls per paper (each reads its whole section).
    """
    plan = ContextPlan()
    for section in paper.sections:
        if section.kind in _NEVER_SENT and section.blocks:
            plan.left_out.append(f"{_label(section)} ({_NEVER_SENT[section.kind]}, not sent)")
    candidates = [s for s in paper.sections if s.kind in (ABSTRACT, BODY) and s.blocks]
    candidates.sort(key=section_priority)  # stable: document order within a priority
    remaining = budget
    overflow: list[Section] = []
    for section in candidates:
        cost = count_tokens(section_context(section))
        if cost <= remaining:
            plan.verbatim.append(section)
            plan.tokens += cost
            remaining -= cost
        else:
            overflow.append(section)
    for section in overflow:
        if len(plan.to_condense) < max_condensed and remaining >= notes_tokens:
            plan.to_condense.append(section)
            remaining -= notes_tokens
        else:
            plan.left_out.append(f"{_label(section)} (did not fit the context window)")
    return plan


NUMBER_CUE = "NUM"
_NUMBER = re.compile(r"\d+(?:\.\d+)?%?")


def _cue_score(cues: tuple[str, ...], section: Section, text: str) -> float:
    lowered = f"{section.title}\n{text}".lower()
    score = float(sum(lowered.count(cue) for cue in cues if cue != NUMBER_CUE))
    if NUMBER_CUE in cues:
        score += 0.3 * min(len(_NUMBER.findall(text)), 10)
    return score


def pick_passages(
    sections: list[Section],
    cue_sets: list[tuple[str, ...]],
    words: int = 160,
    exclude: list[list[Block]] | None = None,
) -> list[list[Block]]:
    """For each cue set, the paragraphs of the paper that answer it best (about `words` words).

    Why: a small model answers with the paper's concrete facts when the passage holding them
    stands next to the question, and different passages per question keep questions distinct.
    Paragraphs already given to an earlier cue set (or in `exclude`) come last.
    """
    candidates = [(s, b) for s in sections if s.kind == BODY for b in s.blocks]
    candidates = candidates or [(s, b) for s in sections for b in s.blocks]
    used = {id(b) for passage in exclude or [] for b in passage}
    passages = []
    for cues in cue_sets:
        ranked = sorted(
            candidates,
            key=lambda sb: (id(sb[1]) in used, -_cue_score(cues, sb[0], sb[1].text)),
        )
        chosen: list[Block] = []
        for _, block in ranked:
            if chosen and sum(len(b.text.split()) for b in chosen) >= words // 2:
                break
            chosen.append(block)
            used.add(id(block))
        passages.append(chosen)
    return passages


def passage_text(blocks: list[Block], words: int = 160) -> str:
    """Paragraphs with their page marks, cut at about `words` words."""
    parts, total = [], 0
    for block in blocks:
        remaining = words - total
        text = block.text
        if len(text.split()) > remaining:
            text = " ".join(text.split()[:remaining]) + " …"
        parts.append(f"[p.{block.page}] {text}")
        total += len(text.split())
        if total >= words:
            break
    return "\n".join(parts)
