"""Choose the paper's sentences that answer each question aspect, as an English reading task.

Why: the small model reads English far better than it writes Japanese, and choosing the right
sentences was the hard part of answering (issue 14: cue words alone picked a figure quoting
another paper, a table row, an example). Cue words shortlist a few of the paper's own sentences
per aspect; what each kind of question needs is checked without the model (a data question's
sentence names a data set, a result's carries a figure, a method's names what is done; no
sentence about the paper's own layout, no fragment); then the model's probability of "yes" to
"does this sentence state <the aspect>?", read by forced decoding, ranks them (issue 25). An
aspect whose best sentence scores below `MIN_YES` is not asked at all.

Only the paper's own statements are candidates: no captions, figure or table text, no
references, appendices, acknowledgments or related-work sections, no sentences about cited work.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from localdigest import textcheck
from localdigest.backend import Message
from localdigest.errors import TemplateError
from localdigest.generate.tasks import TaskRunner, reading
from localdigest.paper import ABSTRACT, BODY, Paper, Section
from localdigest.prompts import Aspect, PromptSet

T = TypeVar("T")

SHORTLIST = 6  # candidates the model reads per aspect
# P(yes) at or above which a sentence answers its aspect: calibrated on 222 blind-judged
# (aspect, sentence) pairs of 4 corpus papers not reported (AUC 0.72; an aspect's most probable
# sentence answers it 0.62 of the time at 0.5, 0.68 at 0.6 with 9.2 aspects a paper, no better
# above; benchmarks/README.md, "Answers that answer", scripts/calibrate_selection.py)
MIN_YES = 0.6
YES_REPLIES, NO_REPLIES = ("Yes", "yes"), ("No", "no")
NUMBER_CUE = "NUM"
MIN_WORDS, MAX_WORDS = 8, 70
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_ABBREVIATION_END = re.compile(
    r"(?:\bet al|\be\.g|\bi\.e|\bcf|\bvs|\bFigs?|\bEqs?|\bSecs?|\bTab|\bapprox|\bresp|\bNo)\.$"
)
_OTHER_WORK = re.compile(
    r"related work|prior work|previous work|literature|^background(?: and motivation)?$", re.I
)
_CAPTION = re.compile(
    r"^(?:Figure|Fig\.|Table|Algorithm|Listing|Example)\s*(?:[A-Z]?\d+|[IVX]+|[A-Z])?[.:]", re.I
)
# A caption's label after other text: a table's or figure's cells run into its caption
_CAPTION_INSIDE = re.compile(r"\S\s+(?:Figure|Fig\.|Table)\s*(?:\d+|[IVX]+):\s")
# Numbered [12], author-year (Smith et al., 2020) and alphabetic-key [Koe05, ZSVG16] citations
_CITATION = re.compile(
    r"et al\.|\[\d+(?:[,–-]\s*\d+)*\]|\([A-Z][^()]*\d{4}[a-z]?\)"
    r"|\[[A-Z][A-Za-z+]*\d{2}[a-z]?(?:,\s*[A-Z][A-Za-z+]*\d{2}[a-z]?)*\]"
)
_OWN_WORK = re.compile(r"\b(?:we|our|us|this (?:paper|work|study|article))\b", re.I)
# A sentence that leans on the one before it is shown with it, or it answers nothing alone: it
# opens with a pronoun or connective, or points back ("this constraint", "such models") early on.
_ANAPHORA = re.compile(
    r"^(?:It|They|He|She|Here|Thus|Therefore|Hence|Then|However|Instead|Consequently|Accordingly"
    r"|Nevertheless|Similarly|Likewise|Otherwise)\b"
    r"|^(?:\S+\s+){1,11}?(?:thus|therefore|hence)\b"
    r"|^(?:\S+\s+){0,5}?(?:[Tt]his|[Tt]hese|[Tt]hose|[Ss]uch|the same|the above|the latter"
    r"|the former)\b(?! (?:as|paper|work|study|article|thesis|report|section|chapter)\b)"
)
# A short sentence naming again, as "The ...", a thing its previous sentence introduced
_RESTATES = re.compile(r"^The (\w+)")
RESTATING_WORDS = 12
# A number stated, not a part of a name ("F1", "ResNet-50", "1D", "CIFAR-10", "GPT-2") or
# of a citation's year ("2013b"); it may carry a unit ("70M", "200k", "5e-5")
_NUMBER = re.compile(r"(?<![\w\-.])\d+(?:[.,]\d+)*(?:e-?\d+)?(?:%|[kKMBx×]?\b)")
_NAME = re.compile(r"\b[A-Z][A-Za-z]*[A-Z0-9][A-Za-z0-9\-]*\b")


# A table, figure or section named by its number: not a fact the sentence states
_REFERENCE = re.compile(
    r"\b(?:Sections?|Secs?\.|Tables?|Tab\.|Figures?|Figs?\.|Eqs?\.|Equations?|Appendix"
    r"|Algorithms?|Chapters?|Lines?)\s*~?\(?(?:[A-Z]?\d+|[A-Z]\b)(?:\.\d+)*\)?",
    re.I,
)
# What a table, figure or section is said to do where a sentence only points to it
_POINTS_TO = r"summari[sz]|show|list|present|report|give|provide|describ|detail"
_LAYOUT = re.compile(
    r"\b(?:this|the following|the next|next|the previous|the remaining|subsequent|later)"
    r" (?:sub)?sections?\b|\bthe rest of (?:the|this) (?:paper|article|work)\b"
    r"|\b(?:is|are) (?:organi[sz]ed|structured) as follows\b"
    rf"|\b(?:Tables?|Tab\.|Figures?|Figs?\.)\s*\d+\w*\s+(?:{_POINTS_TO}"
    r"|illustrat|compar|depict|display|contain)"
    rf"|\b(?:Sections?|Sec\.)\s*\d+[\d.]*\s+(?:{_POINTS_TO}"
    r"|explain|discuss|introduc|conclud)(?!\w* that\b)"
    r"|\(Sections? \d[^()]*\)[^()]*\(Sections? \d"  # "the pipeline (Section 2), the setup (Section 3)"
    r"|(?<!\bas )\b(?:shown|given|listed|summari[sz]ed|reported|presented|described|detailed"
    r"|discussed|(?:can|may) be found)"
    r" in (?:the )?(?:Tables?|Tab\.|Figures?|Figs?\.|Sections?|Sec\.|Appendix|supplementary"
    r"|Algorithms?|Alg\.)"
    r"|^See (?:Tables?|Figures?|Figs?\.|Sections?|Sec\.|Appendix|Algorithms?|Alg\.)"
    r"|^We (?:provide|give|defer|include|present|propose|describe|discuss|leave)\b[^.]*"
    r"\bin (?:the )?(?:Appendix|Appendices|appendix|supplementary)",
    re.I,
)
# A claim stated in a that-clause: "Table 5 shows that ...", "in the previous section we saw that"
_STATES_THAT = re.compile(
    r"\b(?:show|saw|see|f[oi]u?nd|demonstrat|prove|observ|indicat|suggest|confirm|verif)\w* that\b",
    re.I,
)
# "We propose to study ...", "... opens new opportunities": a frame that names nothing built
_FRAMING = re.compile(
    r"\b(?:propose|aim|seek|intend|want|wish|set out|try|attempt)s? to (?:study|investigate"
    r"|explore|examine|understand|analy[sz]e|discuss|answer|address|shed light|look)\b"
    r"|\bopens? (?:up )?(?:new |many |several |exciting )?(?:opportunit|avenue|direction"
    r"|possibilit|door)",
    re.I,
)
_COMPARATIVE = re.compile(
    r"\b(?:outperform\w*|better|worse|higher|lower|faster|slower|fewer|surpass\w*|exceed\w*"
    r"|beat\w*|superior|inferior|compared (?:to|with)|than|comparable|on par)\b",
    re.I,
)
_NOT_NAMES = frozenset(
    " ".join(
        (
            "A An All As Both Each For However If In It Its Moreover Our Since The Then These This",
            "Those Thus To We When While Furthermore Finally First Second Third Here On",
            "Table Tables Figure Figures Fig Figs Section Sections Sec Eq Equation Appendix",
            "Algorithm Chapter",
        )
    ).split()
)


def is_about_layout(sentence: str) -> bool:
    """A sentence about the paper's own structure that carries no figure and states no claim of
    its own: it answers nothing ("In this section we describe the data", "Table 3 summarizes
    ..."), unlike "As shown in Table 5, X outperforms Y" or "Table 5 shows that X ..."."""
    return bool(_LAYOUT.search(sentence)) and not (
        has_figure(sentence) or _STATES_THAT.search(sentence)
    )


def has_figure(text: str) -> bool:
    """A number the sentence states (not the number of a table, figure or section)."""
    return bool(_NUMBER.search(_REFERENCE.sub("", text)))


def names_something(text: str) -> bool:
    """A capitalised name after the first word (a data set, a model, a baseline)."""
    words = re.findall(r"[A-Za-z][\w-]*", text)[1:]
    return any(w[0].isupper() and w not in _NOT_NAMES for w in words)


def states_a_result(text: str) -> bool:
    """A figure, or a comparison with a named baseline."""
    return has_figure(text) or bool(_COMPARATIVE.search(text) and names_something(text))


def names_the_work(text: str) -> bool:
    """Says what is built or done, not only that something will be studied."""
    return not _FRAMING.search(text)


# What each kind of question needs of its sentence (aspects.tsv's last column)
NEEDS: dict[str, Callable[[str], bool]] = {
    "-": lambda _: True,
    "name": names_something,
    "result": states_a_result,
    "work": names_the_work,
}


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
    previous: str | None  # the sentence before, where this one leans on it (`leans_back`)

    @property
    def sentences(self) -> list[str]:
        """What the answer translates: the sentence, with the one before where it needs it."""
        return [self.previous, self.text] if self.previous else [self.text]


@dataclass(frozen=True)
class Pick:
    """An aspect the paper has something for, and the sentence that states it."""

    aspect: Aspect
    candidate: Candidate
    second: bool = False  # a second sentence for the same aspect

    @property
    def question(self) -> str:
        return self.aspect.second_question if self.second else self.aspect.question

    @property
    def english_question(self) -> str:
        return self.aspect.second_english if self.second else self.aspect.english

    @property
    def slot(self) -> str:
        """The aspect's key, marked where this is its second sentence (the record's stats)."""
        return slot_name(self.aspect, self.second)


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
                leaning = leans_back(sentence, previous)
                if _is_own_statement(sentence) and (not leaning or _holds_up(previous)):
                    found.append(
                        Candidate(
                            len(found), sentence, block.page, section.title,
                            section.kind == ABSTRACT, previous if leaning else None,
                        )
                    )  # fmt: skip
                previous = sentence
    return found, left_out


def leans_back(sentence: str, previous: str | None) -> bool:
    """Whether the sentence needs the one before it to be understood: it opens with a pronoun
    or connective, points back early on ("this constraint", "these models"), or is short and
    names again, as "The ...", something the sentence before introduced."""
    if _ANAPHORA.match(sentence):
        return True
    restated = _RESTATES.match(sentence)
    return bool(
        restated and previous and len(sentence.split()) <= RESTATING_WORDS
        and re.search(rf"\b{re.escape(restated.group(1))}\b", previous, re.I)
    )  # fmt: skip


def _holds_up(previous: str | None) -> bool:
    """Whether a sentence leant on can be shown with it: a whole sentence of the paper's own, not
    a fragment ("the corresponding eigenvalue.") nor about cited work ("TweetLID [ZSVG16] is a
    dataset of Tweets."; then "It contains 14 992 Tweets" answers nothing about the paper)."""
    if previous is None or not previous[:1].isupper() or is_about_layout(previous):
        return False
    return not _CITATION.search(previous) or bool(_OWN_WORK.search(previous))


def _excluded(section: Section) -> str:
    if section.kind not in (ABSTRACT, BODY):
        return f"{section.kind}, not used for questions"
    if _OTHER_WORK.search(section.title.strip()):
        return "other work, not used for questions"
    return ""


def _label(section: Section) -> str:
    return " ".join(x for x in (section.number, section.title) if x) or section.kind


def _is_own_statement(sentence: str) -> bool:
    """A whole sentence of prose that speaks of this paper's work, not of cited work, nor of
    the paper's own layout ("In this section we describe ...", "Table 2 summarizes ..."), nor
    a table's cells run into its caption ("Stage Input Output ... Table 1: The stages.")."""
    words = sentence.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or "http" in sentence:
        return False
    if not sentence.endswith((".", "!", "?")) or sentence[0].islower() or sentence[0].isdigit():
        return False  # a fragment, or it introduces a list, a formula or a figure
    if is_about_layout(sentence) or _CAPTION_INSIDE.search(sentence):
        return False
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


def shortlist(aspect: Aspect, pool: Sequence[Candidate], *, every: bool = False) -> list[Candidate]:
    """The aspect's best-scoring candidates with at least one cue and what the aspect needs
    (`every`: whether or not they meet its needs, to measure those checks), in document order."""
    needs = NEEDS.get(aspect.needs)
    if needs is None:
        raise TemplateError(
            f"aspects.tsv: aspect {aspect.key!r} needs {aspect.needs!r}; known: {', '.join(NEEDS)}"
        )
    scored = [(cue_score(aspect, c), c) for c in pool]
    cued = [x for x in scored if x[0] >= 1.0 and (every or needs(" ".join(x[1].sentences)))]
    ranked = sorted(cued, key=lambda x: -x[0])[:SHORTLIST]
    return sorted((c for _, c in ranked), key=lambda c: c.index)


@dataclass
class SentencePicker:
    """Reads each shortlisted sentence with each aspect it may answer, and keeps the ones the
    model most clearly says state it."""

    prompts: PromptSet
    runner: TaskRunner
    min_yes: float = MIN_YES

    def pick(
        self, paper: Paper, pool: list[Candidate], count: int
    ) -> tuple[list[Pick], list[Pick], dict[str, str]]:
        """Up to `count` picks, in aspect order: the most probable sentence of each aspect that
        has one at or above `min_yes`, then second sentences for the repeatable aspects; each
        sentence answers one question only. Also returns the picks beyond `count`, most
        probable first (asked where a pick's sentence does not answer its question), and what
        became of each aspect (for the record's stats: why a question was or was not asked,
        with the probability read)."""
        aspects = self.prompts.aspects
        lists = {a.key: shortlist(a, pool) for a in aspects}
        yes = self.yes_probabilities(paper, aspects, lists)
        outcomes: dict[str, str] = {}
        used: list[Candidate] = []
        firsts = self._assign(aspects, lists, yes, used, outcomes, False)
        repeat = [p.aspect for p in firsts if p.aspect.second_question]
        seconds = self._assign(repeat, lists, yes, used, outcomes, True)
        ranked = sorted(firsts, key=lambda p: -yes[p.aspect.key, p.candidate.index])
        ranked += sorted(seconds, key=lambda p: -yes[p.aspect.key, p.candidate.index])
        for spare in ranked[count:]:
            outcomes[spare.slot] += ", in reserve: the question limit was reached"
        picks = in_aspect_order(ranked[:count], aspects, lambda p: p)
        return picks, ranked[count:], outcomes

    def _assign(
        self,
        aspects: Sequence[Aspect],
        lists: dict[str, list[Candidate]],
        yes: dict[tuple[str, int], float],
        used: list[Candidate],
        outcomes: dict[str, str],
        second: bool,
    ) -> list[Pick]:
        """Most probable (aspect, sentence) pairs first, each aspect taken once and no sentence
        shown in two answers (two papers outside the corpus showed one sentence twice: as one
        answer and as the context of the next sentence's), nor one worded like it."""
        pairs = sorted(
            ((yes[a.key, c.index], a, c) for a in aspects for c in lists[a.key]),
            key=lambda x: (-x[0], x[2].index),
        )
        picks: list[Pick] = []
        taken: set[str] = set()
        for probability, aspect, candidate in pairs:
            if aspect.key in taken or probability < self.min_yes or _repeats(candidate, used):
                continue
            taken.add(aspect.key)
            used.append(candidate)
            picks.append(Pick(aspect, candidate, second))
        for aspect in aspects:
            outcomes[slot_name(aspect, second)] = _aspect_outcome(
                aspect, lists[aspect.key], yes, picks, self.min_yes
            )
        return picks

    def yes_probabilities(
        self, paper: Paper, aspects: Sequence[Aspect], lists: dict[str, list[Candidate]]
    ) -> dict[tuple[str, int], float]:
        """P(yes) the model gives to "does this sentence state <the aspect>?", read by forced
        decoding: a graded answer (a sampled yes/no collapses to one label). Chats are scored
        sentence by sentence, so consecutive ones share the sentence's prefix in the cache."""
        pairs = sorted(((c, a) for a in aspects for c in lists[a.key]), key=lambda x: x[0].index)
        if not pairs:
            return {}
        chats = [
            reading(
                self.prompts, "verify.j2", title=paper.metadata.title or "",
                sentence=" ".join(candidate.sentences), description=aspect.description,
            )
            for candidate, aspect in pairs
        ]  # fmt: skip
        found = says_yes(self.runner, "select", chats)
        return {(a.key, c.index): p for (c, a), p in zip(pairs, found, strict=True)}


def _repeats(candidate: Candidate, used: Sequence[Candidate]) -> bool:
    """A sentence the candidate's answer shows (its own, or the one before it shown with it)
    is, or is worded like, one a taken answer shows."""
    return any(
        textcheck.similarity(mine, theirs) >= textcheck.DUPLICATE_SIMILARITY
        for u in used
        for mine in candidate.sentences
        for theirs in u.sentences
    )


def says_yes(runner: TaskRunner, stage: str, chats: Sequence[list[Message]]) -> list[float]:
    """P(yes) the model gives each yes/no reading task, by forced decoding of the replies."""
    replies = YES_REPLIES + NO_REPLIES
    scores = runner.score(stage, [(chat, r) for chat in chats for r in replies])
    width = len(replies)
    return [yes_share(scores[i * width : (i + 1) * width]) for i in range(len(chats))]


def in_aspect_order(
    items: Sequence[T], aspects: Sequence[Aspect], pick_of: Callable[[T], Pick]
) -> list[T]:
    """The items as the reader is asked them: by their pick's aspect, an aspect's second
    sentence last."""
    order = {a.key: i for i, a in enumerate(aspects)}
    return sorted(items, key=lambda x: (order[pick_of(x).aspect.key], pick_of(x).second))


def yes_share(scores: Sequence[float]) -> float:
    """P(yes) among the yes and no replies, from their log-probabilities (YES_REPLIES first)."""
    weights = [math.exp(s) for s in scores]
    return sum(weights[: len(YES_REPLIES)]) / sum(weights)


def slot_name(aspect: Aspect, second: bool) -> str:
    return aspect.key + (" (second)" if second else "")


def _aspect_outcome(
    aspect: Aspect,
    shortlisted: list[Candidate],
    yes: dict[tuple[str, int], float],
    picks: list[Pick],
    min_yes: float,
) -> str:
    """Why the aspect is or is not asked, for the record's stats."""
    chosen = next((p.candidate for p in picks if p.aspect is aspect), None)
    if chosen is not None:
        probability = yes[aspect.key, chosen.index]
        return f"sentence {chosen.index} (p. {chosen.page}), P(yes) {probability:.2f}"
    if not shortlisted:
        return "no candidate sentences"
    best = max(shortlisted, key=lambda c: yes[aspect.key, c.index])
    probability = yes[aspect.key, best.index]
    if probability < min_yes:
        return f"none: best P(yes) {probability:.2f} < {min_yes} (sentence {best.index})"
    return f"none: its sentences answer other aspects (best P(yes) {probability:.2f})"
