"""Choose the paper's sentences that answer each question aspect, as an English reading task.

Why: the small model reads English far better than it writes Japanese, and choosing the right
sentences was the hard part of answering (issue 14: cue words alone picked a figure quoting
another paper, a table row, an example). So cue words only shortlist a few of the paper's own
sentences per aspect; the model then picks the one that states the aspect, or answers 0 when
none does, and an aspect the paper has nothing for is not asked at all.

Only the paper's own statements are candidates: no captions, figure or table text, no
references, appendices, acknowledgments or related-work sections, no sentences about cited work.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from localdigest.backend import Completion, Message
from localdigest.generate.tasks import Attempt, TaskRunner, reading
from localdigest.paper import ABSTRACT, BODY, Paper, Section
from localdigest.prompts import Aspect, PromptSet
from localdigest.record import Problem

SHORTLIST = 6  # candidates the model chooses from per aspect
NUMBER_CUE = "NUM"
MIN_WORDS, MAX_WORDS = 8, 70
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_ABBREVIATION_END = re.compile(
    r"(?:\bet al|\be\.g|\bi\.e|\bcf|\bvs|\bFigs?|\bEqs?|\bSecs?|\bTab|\bapprox|\bresp|\bNo)\.$"
)
_OTHER_WORK = re.compile(
    r"related work|prior work|previous work|literature|^background(?: and motivation)?$", re.I
)
_CAPTION = re.compile(r"^(?:Figure|Fig\.|Table|Algorithm|Listing|Example)\s*[A-Z]?\d*[.:]", re.I)
_CITATION = re.compile(r"et al\.|\[\d+(?:[,–-]\s*\d+)*\]|\([A-Z][^()]*\d{4}[a-z]?\)")
_OWN_WORK = re.compile(r"\b(?:we|our|us|this (?:paper|work|study|article))\b", re.I)
# A sentence that leans on the one before it is shown with it, or it answers nothing alone.
_ANAPHORA = re.compile(
    r"^(?:This|These|That|Those|It|They|Such|Here|Thus|Therefore|Hence)\b"
    r"(?! (?:paper|work|study|article|thesis|report)\b)"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?%?")
_NAME = re.compile(r"\b[A-Z][A-Za-z]*[A-Z0-9][A-Za-z0-9\-]*\b")


def split_sentences(text: str) -> list[str]:
    """English sentences of a paragraph: a break after .!? before a capital, digit or bracket,
    but not after an abbreviation ("et al. (2021)", "e.g. Adam", "Fig. 3")."""
    sentences: list[str] = []
    for piece in _SENTENCE_BREAK.split(" ".join(text.split())):
        if sentences and _ABBREVIATION_END.search(sentences[-1]):
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    return sentences


@dataclass(frozen=True)
class Candidate:
    """A sentence of the paper's own text, where it is, and the sentence before it."""

    index: int  # position in the paper's candidate list: document order
    text: str
    page: int
    section: str
    in_abstract: bool
    previous: str | None  # the sentence before, shown with this one when it starts "This ..."

    @property
    def sentences(self) -> list[str]:
        """What the answer translates: the sentence, with the one before where it needs it."""
        if self.previous and _ANAPHORA.match(self.text):
            return [self.previous, self.text]
        return [self.text]


@dataclass(frozen=True)
class Pick:
    """An aspect the paper has something for, and the sentence that states it."""

    aspect: Aspect
    candidate: Candidate
    second: bool = False  # a second sentence for the same aspect

    @property
    def question(self) -> str:
        return self.aspect.second_question if self.second else self.aspect.question


def candidates(paper: Paper) -> tuple[list[Candidate], list[str]]:
    """The paper's own sentences, and the sections left out of the Q&A with the reason."""
    found: list[Candidate] = []
    left_out: list[str] = []
    for section in paper.sections:
        reason = _excluded(section)
        if reason:
            if section.blocks:
                left_out.append(f"{_label(section)} ({reason})")
            continue
        for block in section.blocks:
            if _CAPTION.match(block.text):
                continue
            previous = None
            for sentence in split_sentences(block.text):
                if _is_own_statement(sentence):
                    found.append(
                        Candidate(
                            len(found), sentence, block.page, section.title,
                            section.kind == ABSTRACT, previous,
                        )
                    )  # fmt: skip
                previous = sentence
    return found, left_out


def _excluded(section: Section) -> str:
    if section.kind not in (ABSTRACT, BODY):
        return f"{section.kind}, not used for questions"
    if _OTHER_WORK.search(section.title.strip()):
        return "other work, not used for questions"
    return ""


def _label(section: Section) -> str:
    return " ".join(x for x in (section.number, section.title) if x) or section.kind


def _is_own_statement(sentence: str) -> bool:
    """A whole sentence of prose that speaks of this paper's work, not of cited work."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or "http" in sentence:
        return False
    if not sentence.endswith((".", "!", "?")):
        return False  # it introduces a list, a formula or a figure: it says nothing alone
    letters = sum(c.isalpha() for c in sentence)
    if letters < 0.7 * len(sentence.replace(" ", "")):
        return False  # formulas, table rows
    return not _CITATION.search(sentence) or bool(_OWN_WORK.search(sentence))


def cue_score(aspect: Aspect, candidate: Candidate) -> float:
    """Cue words in the sentence and in its section title, the facts it carries, and a
    preference for the body over the abstract (which the 概要 already gives)."""
    text, heading = candidate.text.lower(), candidate.section.lower()
    words = [cue for cue in aspect.cues if cue != NUMBER_CUE]
    score = sum(text.count(cue) for cue in words) + 2.0 * sum(cue in heading for cue in words)
    if not score:
        return 0.0  # facts alone do not make a sentence about this aspect
    facts = len(_NUMBER.findall(candidate.text)) + len(_NAME.findall(candidate.text))
    score += (0.6 if NUMBER_CUE in aspect.cues else 0.3) * min(facts, 5)
    score += 0.5 * bool(_OWN_WORK.search(candidate.text))
    return score - (0.5 if candidate.in_abstract else 0.0)


def shortlist(aspect: Aspect, pool: Sequence[Candidate], used: set[int]) -> list[Candidate]:
    """The aspect's best-scoring unused candidates with at least one cue, in document order."""
    scored = [(cue_score(aspect, c), c) for c in pool if c.index not in used]
    ranked = sorted((x for x in scored if x[0] >= 1.0), key=lambda x: -x[0])[:SHORTLIST]
    return sorted((c for _, c in ranked), key=lambda c: c.index)


@dataclass
class SentencePicker:
    """Asks the model which shortlisted sentence states each aspect (an English task)."""

    prompts: PromptSet
    runner: TaskRunner

    def pick(
        self, paper: Paper, pool: list[Candidate], count: int
    ) -> tuple[list[Pick], dict[str, str]]:
        """Up to `count` picks, in aspect order: one per aspect the paper has, then second
        sentences for the repeatable aspects; each sentence answers one question only. An aspect
        whose sentence an earlier aspect took is asked again without it. Also returns what
        became of each aspect (for the record's stats: why a question was not asked)."""
        used: set[int] = set()
        outcomes: dict[str, str] = {}
        picks, lost = self._round(paper, pool, self.prompts.aspects, used, False, outcomes)
        if lost:
            picks += self._round(paper, pool, lost, used, False, outcomes)[0]
        repeat = [p.aspect for p in picks if p.aspect.second_question]
        if len(picks) < count and repeat:
            picks += self._round(paper, pool, repeat, used, True, outcomes)[0]
        order = {a.key: i for i, a in enumerate(self.prompts.aspects)}
        picks.sort(key=lambda p: (order[p.aspect.key], p.second))
        return picks[:count], outcomes

    def _round(
        self,
        paper: Paper,
        pool: list[Candidate],
        aspects: Sequence[Aspect],
        used: set[int],
        second: bool,
        outcomes: dict[str, str],
    ) -> tuple[list[Pick], list[Aspect]]:
        """One question per aspect; returns the picks and the aspects whose choice was taken."""
        lists = {a.key: shortlist(a, pool, used) for a in aspects}
        asked = [a for a in aspects if lists[a.key]]
        prompts = [self._task(paper, a, lists[a.key]) for a in asked]

        def check(i: int, completion: Completion) -> Attempt:
            return _parse_choice(completion.text, len(lists[asked[i].key]))

        answers = self.runner.run("select", prompts, check, 6)
        confirmed = self._confirmed(paper, asked, [lists[a.key] for a in asked], answers)
        picks, lost = [], []
        for aspect in aspects:
            outcomes[aspect.key + (" (second)" if second else "")] = "no candidate sentences"
        for aspect, answer in zip(asked, answers, strict=True):
            key = aspect.key + (" (second)" if second else "")
            if not answer.extra:  # 0 (none of the sentences states it) or no number at all
                outcomes[key] = "; ".join(map(str, answer.problems)) or "none"
                continue
            chosen = lists[aspect.key][answer.extra - 1]
            if not confirmed[aspect.key]:
                outcomes[key] = f"sentence {chosen.index}, but read alone it does not state it"
                continue
            if chosen.index in used:
                outcomes[key] = f"sentence {chosen.index} already answers another aspect"
                lost.append(aspect)
                continue
            used.add(chosen.index)
            outcomes[key] = f"sentence {chosen.index} (p. {chosen.page})"
            picks.append(Pick(aspect, chosen, second))
        return picks, lost

    def _confirmed(
        self,
        paper: Paper,
        aspects: list[Aspect],
        lists: list[list[Candidate]],
        answers: list[Attempt],
    ) -> dict[str, bool]:
        """Each chosen sentence read alone: does it state the aspect? A second, narrower look,
        because a small model picks something from a list even where nothing fits."""
        chosen = [
            (a, c[x.extra - 1]) for a, c, x in zip(aspects, lists, answers, strict=True) if x.extra
        ]
        prompts = [
            reading(
                self.prompts, "verify.j2", title=paper.metadata.title or "",
                sentence=candidate.text, description=aspect.description,
            )
            for aspect, candidate in chosen
        ]  # fmt: skip

        def check(_: int, completion: Completion) -> Attempt:
            reply = completion.text.strip().lower()
            if not reply.startswith(("yes", "no")):
                return Attempt(reply, [Problem("no yes or no", repr(reply[:40]))])
            return Attempt(reply, [], reply.startswith("yes"))

        replies = self.runner.run("verify", prompts, check, 3) if prompts else []
        return {a.key: bool(r.extra) for (a, _), r in zip(chosen, replies, strict=True)}

    def _task(self, paper: Paper, aspect: Aspect, shortlisted: list[Candidate]) -> list[Message]:
        return reading(
            self.prompts,
            "select.j2",
            title=paper.metadata.title or "",
            sentences=[c.text for c in shortlisted],
            description=aspect.description,
        )


def _parse_choice(text: str, options: int) -> Attempt:
    """The sentence number in a reply ("3", "[3]", "Sentence 3."); 0 means none."""
    match = re.search(r"\d+", text)
    if not match:
        return Attempt(text, [Problem("no sentence number", repr(text[:40]))])
    number = int(match.group())
    if number > options:
        return Attempt(text, [Problem("sentence number out of range", str(number))])
    return Attempt(text, [], number)
