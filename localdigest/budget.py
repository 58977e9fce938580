"""Choose what of a paper goes into the model's context, counted with the model's own tokenizer.

Sections are taken by priority (abstract, introduction, method, results, conclusion, then the
rest of the body) until the budget is spent; body sections that do not fit are condensed into
notes by a map step when the budget allows, and everything left out is recorded, never cut
silently. References, appendices and acknowledgments are never sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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


def section_context(section: Section, moved: frozenset[Block] = frozenset()) -> str:
    """A section as context text: its heading, then paragraphs with [p.N] at each page change.

    Sentences in `moved` (shown elsewhere in the prompt, as a question's excerpt) are left out,
    so that no sentence of the paper is evaluated twice.
    """
    heading = " ".join(x for x in (section.number, section.title) if x)
    blocks = section.blocks
    if moved:
        blocks = [Block(text, b.page) for b in blocks if (text := _unmoved_text(b, moved))]
    return "\n".join(([f"## {heading}"] if heading else []) + page_marked(blocks))


def _unmoved_text(block: Block, moved: frozenset[Block]) -> str:
    return " ".join(s for s in split_sentences(block.text) if Block(s, block.page) not in moved)


def page_marked(blocks: Sequence[Block]) -> list[str]:
    """Each block's text, with "[p.N] " before it where the page changes."""
    texts, page = [], None
    for block in blocks:
        texts.append(block.text if block.page == page else f"[p.{block.page}] {block.text}")
        page = block.page
    return texts


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
_NAME = re.compile(r"\b[A-Z][A-Za-z]*[A-Z0-9][A-Za-z0-9\-]*\b")  # ResNet-50, BLEU, GPT-4
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
MIN_SENTENCE_WORDS = 6


def split_sentences(text: str) -> list[str]:
    """English sentences of a paragraph (a break after .!? before a capital, digit or bracket)."""
    return _SENTENCE_BREAK.split(" ".join(text.split()))


def _cue_score(cues: tuple[str, ...], title: str, text: str) -> float:
    """Cue words in the sentence, cue words in its section title (weighted: a "Dataset"
    section answers the data question), and a bonus for the facts answers should carry."""
    lowered, heading = text.lower(), title.lower()
    words = [cue for cue in cues if cue != NUMBER_CUE]
    score = sum(lowered.count(cue) for cue in words) + 2.0 * sum(cue in heading for cue in words)
    facts = len(_NUMBER.findall(text)) + len(_NAME.findall(text))
    weight = 0.6 if NUMBER_CUE in cues else 0.4
    return score + weight * min(facts, 6)


def pick_passages(
    sections: list[Section],
    cue_sets: list[tuple[str, ...]],
    words: int = 50,
) -> list[list[Block]]:
    """For each cue set, the sentences of the paper that answer it best (about `words` words).

    Why: a small model answers with the paper's concrete facts when the sentences holding them
    stand close to the question, and different sentences per question keep questions distinct.
    Sentences, not paragraphs: the few sentences that carry the facts. A sentence goes to one
    cue set only (a passage is empty when none are left). Each passage is returned in document
    order, one Block per sentence with its page.
    """
    body = [s for s in sections if s.kind == BODY] or sections
    sentences = [
        (s.title, Block(sentence, b.page))
        for s in body
        for b in s.blocks
        for sentence in split_sentences(b.text)
        if len(sentence.split()) >= MIN_SENTENCE_WORDS
    ]
    used: set[int] = set()
    passages = []
    for cues in cue_sets:
        scores = {i: _cue_score(cues, title, b.text) for i, (title, b) in enumerate(sentences)}
        ranked = sorted((i for i in scores if i not in used), key=lambda i: -scores[i])
        chosen: list[int] = []  # indices into sentences: sorted, they are in document order
        for i in ranked:
            if chosen and sum(len(sentences[j][1].text.split()) for j in chosen) >= words * 0.6:
                break
            chosen.append(i)
        used.update(chosen)
        passages.append([sentences[i][1] for i in sorted(chosen)])
    return passages


def passage_text(blocks: Sequence[Block]) -> str:
    """Sentences with a page mark at each page change."""
    return " ".join(page_marked(blocks))
