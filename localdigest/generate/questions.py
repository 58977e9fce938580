"""Word each question after the sentence that answers it, and ask only what its sentence answers.

Why: a fixed question per aspect ("主な結果は何か？") asked of whatever sentence was chosen read
as a question its answer did not quite answer. The model writes the question in English from
the chosen sentence (a reading task it does well), and the translator renders it like any other
sentence. It is worded twice (QUESTION_TASKS), and how surely the model reads the sentence as
answering it (`answered`: "does it answer?" and "copy the part that does, else NONE") chooses
between the wordings that pass their checks (where none passes, or the question repeats an
earlier one, the aspect's own fixed question stands) and decides whether it is asked: below
the threshold the question is not asked (the record says why) and its place goes to a pick
beyond the question limit, read once. A worded question whose Japanese is doubtful (scored
below the threshold, or not a question) is shown as its marked English.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from localdigest import textcheck
from localdigest.backend import Completion, Message
from localdigest.generate import checks
from localdigest.generate.select import Pick, has_figure, in_aspect_order, says_yes
from localdigest.generate.tasks import Attempt, TaskRunner, reading
from localdigest.generate.translate import Translator
from localdigest.paper import Paper
from localdigest.prompts import PromptSet
from localdigest.record import UNTRANSLATED, Problem, SentencePair

MAX_QUESTION_WORDS = 20
STEM_LETTERS = 5
_WORD = re.compile(r"[a-z][a-z0-9-]+")
_INFLECTION = re.compile(r"(?:ed|ing|e)$")
# Words that frame a question rather than ask about a content of the paper
_FRAME_TEXT = """what which who whom whose when where why how does do did is are was were be been being can
    could would should will may might has have had the an of in on for to with by from and or as at
    this that these those it its their they them there than into about paper study article work
    authors author main key primary purpose goal aim role approach method methods result results
    finding findings proposed propose proposes used use uses using describe described mean means
    specific type kind way ways new between according other such any some all more most each
    compare compared comparison differ difference report reported reports show shown shows
    state stated states mention mentioned here"""
# Words that name the kind of answer asked for: "What is a limitation of X regarding training
# time?" answered by "X increases the training time by 20%" asks what its sentence says (on 30
# questions of 3 corpus papers not reported, these words alone failed 12 good questions)
_KIND_TEXT = """limitation limitations drawback drawbacks weakness weaknesses challenge challenges
    problem problems issue issues question questions research focus objective contribution
    contributions dataset datasets data size name names number amount percentage percent much many
    performance improvement improvements observe observed effect effects achieve achieved achieves
    experiment experiments experimental setting settings parameters configuration evaluation
    evaluate evaluated measure measured metric metrics regarding terms respect relation characteristics
    address addressed addresses insight insights conclusion conclude suggest suggests reveal reveals
    future direction directions technique techniques benefit benefits advantage advantages
    acknowledge acknowledged previous existing prior"""
_FRAME_WORDS = frozenset(_FRAME_TEXT.split() + _KIND_TEXT.split())
# A question asking for a number ("How many ...?", "What is the F1 score of ...?"): a sentence
# stating no figure cannot answer it (issue 25: "What is the F1 score achieved with dilated
# convolutions?" over "... achieves the peak F1 score when ...", judged unanswered 4 times of 4)
_ASKS_A_NUMBER = re.compile(
    r"^(?:How (?:much|many|large|big|long|fast|often)\b"
    r"|What (?:is|was|are|were) the (?:(?!of |on |for |in |with )\S+ ){0,3}?"
    r"(?:scores?|accurac(?:y|ies)|number|size|percentage|rate|amount|value|F1|BLEU|ROUGE"
    r"|error|improvement|gain|drop|speed-?up)\b)",
    re.I,
)
# "How does X work?": one sentence rarely tells how a whole works. Of 26 such questions readers
# judged (12 corpus papers and 8 outside papers, issue 25, ninth pass), 7 were answered, against
# 534 of 715 of all questions; the method aspect's own "How does the proposed method work?" 2 of 14
_ASKS_HOW_IT_WORKS = re.compile(r"^How (?:does|do|did|can|could|would|will) .+ works?\?$", re.I)
# A Japanese question ends in a question mark, "か", or asks as a request ("教えてください。")
_QUESTION_ENDS = ("？", "?", "か", "ください。")


WORDED, ENGLISH, ASPECTS = "worded", "english", "aspect's"  # how a question came to be
# The wordings of the question task: each pick's question is the one of their questions the model
# reads its sentence as answering most. On 108 judged sentences of 12 corpus papers, the second
# wording alone did no better (answered 0.70 against 0.73), the best of both kept 84 at 0.8 with
# 0.83 answered against 77 and 0.81 (issue 25; adding the aspect's own question did worse: 0.80)
QUESTION_TASKS = ("question.j2", "question_whole.j2")
NO_ANSWER = "NONE"  # the reply of answer_span.j2 where the sentence does not answer


@dataclass(frozen=True)
class Question:
    """A question shown to the reader, how it came to be (the record's stats keep it), and the
    English it asks (what the model reads its answer against)."""

    text: str
    # "worded (<its wordings>): <the English it renders>", or why it is shown in English or
    # the aspect's own question stands
    how: str
    english: str
    kind: str = WORDED  # WORDED, ENGLISH (shown as its marked English) or ASPECTS


@dataclass(frozen=True)
class Option:
    """A candidate question in English, how it came to be, and whether it is the aspect's own."""

    english: str
    how: str
    aspects: bool = False


@dataclass(frozen=True)
class Asked:
    """A question asked, its pick, and the model's P(yes) that the pick's sentence answers it."""

    pick: Pick
    question: Question
    answered: float


@dataclass
class QuestionWriter:
    prompts: PromptSet
    runner: TaskRunner
    translator: Translator
    min_answered: float = 0.0

    def ask(
        self, paper: Paper, picks: Sequence[Pick], reserve: Sequence[Pick] = ()
    ) -> tuple[list[Asked], list[str]]:
        """The questions whose sentence the model reads as answering them, in aspect order:
        the place of each pick whose sentence does not goes to the next pick of the `reserve`,
        worded and read once. Not to its aspect's next sentence, as it did: readers judged 15
        of 22 such questions answered against 192 of 242 first picks (in the sixth pass 6 of
        10 against 44 of 51; issue 25, seventh pass). Also returns what was not asked and why
        (for the record's stats)."""
        first = self._asked(paper, picks, [])
        kept = [a for a in first if a.answered >= self.min_answered]
        second = self._asked(
            paper, reserve[: len(first) - len(kept)], [a.question.text for a in kept]
        )
        kept += [a for a in second if a.answered >= self.min_answered]
        not_asked = [
            f"{a.pick.slot}: {a.question.english!r} over sentence {a.pick.candidate.index}:"
            f" P(answers) {a.answered:.2f} < {self.min_answered:g}"
            for a in first + second
            if a.answered < self.min_answered
        ]
        return in_aspect_order(kept, self.prompts.aspects, lambda a: a.pick), not_asked

    def _asked(self, paper: Paper, picks: Sequence[Pick], earlier: Sequence[str]) -> list[Asked]:
        """Each pick's question: of its worded questions, the one the model reads its sentence as
        answering most (the first where they tie)."""
        if not picks:
            return []
        options = self.options(paper, picks)
        read = self.answer_probabilities(
            paper, picks, [(i, o.english) for i, opts in enumerate(options) for o in opts]
        )
        chosen = [
            max(opts, key=lambda o, i=i: read[i, o.english]) for i, opts in enumerate(options)
        ]
        questions = self._rendered(picks, chosen, earlier)
        asked = [(i, q.english) for i, q in enumerate(questions)]
        fallen_back = [x for x in asked if x not in read]  # the aspect's own, for a repeat
        read |= self.answer_probabilities(paper, picks, fallen_back)
        return [Asked(p, q, read[x]) for p, q, x in zip(picks, questions, asked, strict=True)]

    def answer_probabilities(
        self, paper: Paper, picks: Sequence[Pick], questions: list[tuple[int, str]]
    ) -> dict[tuple[int, str], float]:
        """How surely the model reads each (pick number, English question) as answered by the
        pick's sentence (`answered`)."""
        title = paper.metadata.title or ""
        asked = [(title, picks[i].candidate.sentences, question) for i, question in questions]
        return dict(zip(questions, answered(self.runner, self.prompts, asked), strict=True))

    def options(self, paper: Paper, picks: Sequence[Pick]) -> list[list[Option]]:
        """Each pick's candidate questions in English: those worded from its sentence (one per
        wording of the task, QUESTION_TASKS) that pass their checks, else the aspect's own."""
        title = paper.metadata.title or ""

        def check(i: int, completion: Completion) -> Attempt:
            text = " ".join(completion.text.strip().split("\n")[0].split()).strip('"')
            sentences = picks[i % len(picks)].candidate.sentences
            return Attempt(text, question_problems(text, sentences, title))

        chats = [chat for task in QUESTION_TASKS for chat in self.chats(paper, picks, task)]
        english = self.runner.run("question", chats, check, 40)
        by_pick = [english[i :: len(picks)] for i in range(len(picks))]
        return [_options(pick, worded) for pick, worded in zip(picks, by_pick, strict=True)]

    def chats(self, paper: Paper, picks: Sequence[Pick], task: str) -> list[list[Message]]:
        """The English question `task` of each pick."""
        return [
            reading(
                self.prompts, task, title=paper.metadata.title or "",
                sentence=" ".join(pick.candidate.sentences), description=pick.aspect.description,
            )
            for pick in picks
        ]  # fmt: skip

    def _rendered(
        self, picks: Sequence[Pick], chosen: Sequence[Option], earlier: Sequence[str]
    ) -> list[Question]:
        """The Japanese question of each chosen option; the aspect's own where it repeats one
        of `earlier` or of the picks before it."""
        worded = [i for i, option in enumerate(chosen) if not option.aspects]
        translated = self.translator.translate([chosen[i].english for i in worded], "question")
        japanese = dict(zip(worded, translated, strict=True))
        questions = [
            _question(pick, option, japanese.get(i))
            for i, (pick, option) in enumerate(zip(picks, chosen, strict=True))
        ]
        texts = [*earlier, *(q.text for q in questions)]
        for first, later in textcheck.near_duplicates(texts):  # asked twice: the aspect's own
            i = later - len(earlier)
            if i >= 0 and questions[i].kind != ASPECTS:
                how = f"aspect's: asked twice: {texts[later]!r} repeats question {first + 1}"
                questions[i] = _question(picks[i], Option(picks[i].english_question, how, True))
        return questions


def _question(pick: Pick, option: Option, pair: SentencePair | None = None) -> Question:
    """The chosen option as shown: the aspect's own question, or the worded one in Japanese
    where that is shown and still a question, else as its marked English (doubtful Japanese
    is not shown)."""
    if option.aspects:
        return Question(pick.question, option.how, option.english, ASPECTS)
    assert pair is not None  # every worded option chosen is translated
    text = _question_mark(pair.text)
    if not pair.untranslated and text.endswith(_QUESTION_ENDS):
        return Question(text, option.how, option.english)
    rendered = pair.attempt or pair.text
    how = f"english: rendered {rendered!r}, score {pair.score}; {option.how}"
    return Question(UNTRANSLATED + option.english, how, option.english, ENGLISH)


def answered(
    runner: TaskRunner, prompts: PromptSet, asked: Sequence[tuple[str, Sequence[str], str]]
) -> list[float]:
    """How surely the model reads each (paper title, answer sentences, English question) as
    answered: the mean of its P(yes) to "does this sentence answer the question?" (answers.j2)
    and its P of not replying "NONE" to "copy the part of the sentence that answers it, else
    reply NONE" (answer_span.j2), both by forced decoding. The mean tells answered from not
    with AUC 0.75 on 317 judged questions of 12 corpus papers (P(yes) alone 0.73) and 0.74 on
    102 of 8 others read after it was chosen (P(yes) alone 0.65; benchmarks/README.md, issue
    25, sixth pass)."""

    def chats(template: str) -> list[list[Message]]:
        return [
            reading(prompts, template, title=title, sentence=" ".join(sentences), question=q)
            for title, sentences, q in asked
        ]

    if not asked:
        return []
    yes = says_yes(runner, "question", chats("answers.j2"))
    none = runner.score("question", [(chat, NO_ANSWER) for chat in chats("answer_span.j2")])
    return [(y + 1 - math.exp(n)) / 2 for y, n in zip(yes, none, strict=True)]


def _options(pick: Pick, worded: Sequence[Attempt]) -> list[Option]:
    """The worded questions that passed their checks, each once with the wordings (prompt
    templates) that gave it; else the aspect's own, saying why the worded ones failed."""
    passed: dict[str, list[str]] = {}
    for task, attempt in zip(QUESTION_TASKS, worded, strict=True):
        if not attempt.problems:
            passed.setdefault(attempt.text, []).append(task)
    if passed:
        return [Option(text, f"worded ({', '.join(t)}): {text}") for text, t in passed.items()]
    why = " / ".join(f"{a.text!r}: {'; '.join(map(str, a.problems))}" for a in worded)
    return [Option(pick.english_question, f"aspect's: {why}", True)]


def question_problems(text: str, sentences: Sequence[str], title: str = "") -> list[Problem]:
    """An English question: one short question, with nothing its answer's `sentences` and the
    paper's `title` (which the digest shows) do not hold. The title's words, not only its names,
    may say what the question is about ("... for deep neural networks?"): on 4 held-out
    papers, 4 questions this let through instead of the aspect's own were judged to be answered
    3 times, the aspect's own question 1 time (issue 25)."""
    if not text.endswith("?") or text.count("?") > 1:
        return [Problem("not one question")]
    if len(text.split()) > MAX_QUESTION_WORDS:
        return [Problem("question too long")]
    if _ASKS_HOW_IT_WORKS.search(text):
        return [Problem("asks how a whole works")]
    if _ASKS_A_NUMBER.search(text) and not has_figure(" ".join(sentences)):
        return [Problem("asks for a number its sentence does not give")]
    invented = checks.details_not_in(text, [*sentences, *textcheck.names(title)])
    if invented:
        return [Problem("numbers or names not in its sentence", ", ".join(invented))]
    missing = key_words_missing(text, [*sentences, title])
    return [Problem("question words not in its answer", ", ".join(missing))] * bool(missing)


def key_words_missing(question: str, sentences: Sequence[str]) -> list[str]:
    """The question's content words that its answer's English does not use (compared by their
    first letters, so "evaluate" meets "evaluation"): a question asking what the answer does
    not say (issue 25: "what is the constraint?" answered by "the constraint remains")."""
    words_held = _WORD.findall(" ".join(sentences).lower())
    held = {_stem(part) for w in words_held for part in (w, *w.split("-"))}
    words = _WORD.findall(question.lower())
    return [w for w in words if w not in _FRAME_WORDS and _stem(w) not in held]


def _stem(word: str) -> str:
    """The word's first letters, its inflection aside ("tuned" meets "tune", "uses" "used")."""
    bare = word.rstrip("s")[:STEM_LETTERS]
    return _INFLECTION.sub("", bare) if len(bare) > 2 else bare


def _question_mark(text: str) -> str:
    """A question the translator closed like a statement ("…があるか。") ends in ？."""
    return text[:-1] + "？" if text.endswith("か。") else text
