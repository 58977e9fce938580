"""Generate a paper's Japanese digest: 概要 (abstract translation), one-line summary, grounded Q&A.

Design: the paper context is the first part of every prompt, so the backend evaluates it once
and each later call only evaluates its own short task (prefix reuse). Each Q&A pair is written in
one call per question aspect (problem, method, data, setup, results, ...): the model asks what it
can answer from the paper, which measured better than generating all questions first and then
answering them (see the closing note of issue 5). The sentences that answer each aspect best
are moved out of the paper's body into numbered excerpts at the end of the shared prefix, so a
question's own prompt is only its aspect's number and name, and no sentence is evaluated twice.
The abstract is translated a few sentences at a time, which keeps a small model from skipping or
looping over sentences. Independent calls go through `Backend.chat_many`, so a backend can
decode them in parallel. Every output is validated; failures are retried with another seed and
a higher temperature, and what still fails is kept with warnings.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localdigest import __version__, glossary, textcheck
from localdigest.backend import Backend, CallStats, Completion, GenerationOptions, Message
from localdigest.budget import (
    ContextPlan,
    passage_text,
    pick_passages,
    plan_context,
    section_context,
    split_sentences,
)
from localdigest.config import Settings
from localdigest.paper import ABSTRACT, BODY, Block, Paper, Section
from localdigest.prompts import Aspect, PromptSet
from localdigest.record import DigestRecord, QAPair

StageCallback = Callable[[str, dict[str, Any]], None]

# Tokens kept free beside the paper: the longest task plus its output.
RESERVED_TOKENS = 1024
EXCERPT_TOKENS = 48  # per question: its excerpt's heading (number, aspect) beside the sentences
NO_ANSWER = "論文には記載がありません。"
MIN_JAPANESE_SHARE = 0.7
SUMMARY_CHARS = (40, 160)  # accepted; the prompt asks for 60-120
QA_TOKENS = 240  # a question and a 2-3 sentence answer; longer output is cut at a sentence
MAX_ANSWER_SENTENCES = 4
CHUNK_WORDS = 60  # abstract sentences translated together

_QA = re.compile(
    r"(?:^|\n)\s*(?:Q\d*|Ｑ|質問)\s*[:：]\s*(.+?)\s*(?:A\d*|Ａ|答え|回答)\s*[:：]\s*(.+)",
    re.S,
)
_Q_LINE = re.compile(r"^\s*(?:Q\d*|Ｑ|質問)\s*[:：]\s*(.+)$")
_LABEL = re.compile(r"^\s*(?:A\d*|Ａ|回答|答え|日本語訳|翻訳|訳)\s*[:：]\s*")
UNTRANSLATED = "［未翻訳の原文］"
_PAGE_MARK = re.compile(r"\s*\[p\.\s*\d+\]\s*")
# Where an answer stops being the answer: another pair, or the prompt's own labels echoed
# ("抜粋:", "観点:", an excerpt's heading "[3] 手法の詳細:").
_ANSWER_END = re.compile(r"\s*(?:(?:Q\d*|Ｑ|質問|抜粋|観点|\[\d+\]\s+[^\s:：\[\]]{1,12})\s*[:：])")
# A translation followed by the prompt's source label and the English copied ("英文: ...").
_TRANSLATION_END = re.compile(r"\s*(?:英文|原文)\s*[:：]")
QA_STOP = ["\nQ:", "\nQ：", "\nQ1"]  # one pair per call: stop before the model starts another
QA_PREFILL = "Q:"  # the reply starts in the format, not with the instructions echoed
_MARKUP = re.compile(r"\*\*|__|^#+\s*")
# The qa.j2 instructions copied into the question instead of a question.
_INSTRUCTION_ECHO = ("質問を1つ作り", "観点の文", "抜粋", "1組だけ")
_QUESTION_END = ("？", "?", "か", "か。", "ください。", "たい。", "たいです。")
MIN_SENTENCE_JAPANESE = 0.3  # below this an answer's sentence is copied English
# Problems that leave an output useless to a Japanese reader; when the best attempt is kept,
# one of them outweighs several others (a Japanese answer without a number beats English).
_SEVERE = ("not Japanese enough", "Chinese characters", "empty", "no question and answer")


@dataclass
class Attempt:
    """One output and what is wrong with it: its own problems, and conflicts with the others."""

    text: str
    problems: list[str]
    question: str = ""
    conflicts: list[str] = field(default_factory=list)  # with other results; redone each round

    @property
    def warnings(self) -> list[str]:
        return self.problems + self.conflicts


@dataclass(frozen=True)
class Question:
    """What one Q&A pair is to be about: an aspect, and the excerpt of the paper answering it."""

    number: int  # 1-based, as the excerpt is numbered in the prompt
    aspect: Aspect
    passage: tuple[Block, ...]
    round: int  # > 1: a further question about an aspect already asked about


@dataclass
class Prepared:
    """A paper made ready for its generations: what the model sees, and the questions' plan."""

    plan: ContextPlan
    questions: list[Question]
    prefix: str  # the shared first part of every prompt


@dataclass
class StageLog:
    """Token counts and seconds per stage, how many retries each stage needed and why."""

    stages: dict[str, CallStats] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    retry_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, stage: str, stats: CallStats) -> None:
        self.stages.setdefault(stage, CallStats()).add(stats)

    def retrying(self, stage: str, attempts: list[Attempt]) -> None:
        self.retries[stage] = self.retries.get(stage, 0) + len(attempts)
        for attempt in attempts:
            for problem in attempt.warnings:
                kind = f"{stage}: {re.split(r'[:(]', problem)[0].strip()}"
                self.retry_reasons[kind] = self.retry_reasons.get(kind, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        total = CallStats()
        for stats in self.stages.values():
            total.add(stats)
        return {
            "stages": {name: vars(stats) for name, stats in self.stages.items()},
            "retries": dict(self.retries),
            "retry_reasons": dict(self.retry_reasons),
            "total": vars(total),
        }


def is_severe(problem: str) -> bool:
    return any(word in problem for word in _SEVERE)


def severity(problems: list[str]) -> int:
    return sum(3 if is_severe(p) else 1 for p in problems)


def one_line(text: str) -> str:
    return " ".join(_LABEL.sub("", text.strip()).split())


def clean_answer(text: str, question: str, truncated: bool) -> str:
    """One line of answer: no "A:" label, no echo of the question or of the prompt, no markup,
    no copied English sentences after Japanese ones, no sentence twice, whole sentences, not
    too long."""
    text = _ANSWER_END.split(one_line(text))[0]  # the model sometimes goes on with "Q: ..."
    text = _PAGE_MARK.sub(" ", _MARKUP.sub("", text)).strip()  # passage page marks copied
    for echo in (question, question.rstrip("？?") + "。"):
        if text.startswith(echo):
            text = text[len(echo) :].lstrip()
    if truncated:
        text = textcheck.cut_to_last_sentence(text)
    sentences = list(dict.fromkeys(s.strip() for s in textcheck.japanese_sentences(text)))
    while len(sentences) > 1 and textcheck.japanese_share(sentences[-1]) < MIN_SENTENCE_JAPANESE:
        sentences.pop()
    return "".join(sentences[:MAX_ANSWER_SENTENCES]).strip()


def without_unknown_numbers(answer: str, source: textcheck.SourceIndex) -> str:
    """The answer without its sentences that hold numbers the paper does not, as long as some
    sentence remains: an invented number is cut rather than shown (or retried for)."""
    sentences = textcheck.japanese_sentences(answer)
    kept = [s for s in sentences if not source.unknown_numbers(s)]
    return "".join(kept) if kept else answer


def as_question(question: str, aspect: str) -> str:
    """The model's question, or a plain question about the aspect where the model wrote no
    question (only an answer, the aspect's own wording, a statement, the instructions copied):
    its answer was written for this aspect, so the pair stays instead of being retried."""
    if question.endswith(_QUESTION_END) and not any(e in question for e in _INSTRUCTION_ECHO):
        return question
    return aspect_question(aspect)


def aspect_question(aspect: str) -> str:
    """The aspect's plain question: "背景と課題: 問題と動機" -> "問題と動機は何か？"."""
    return f"{aspect.split(':')[-1].strip()}は何か？"


def parse_qa(text: str) -> tuple[str, str] | None:
    """(question, answer) from the `Q: ... / A: ...` line format, else None."""
    match = _QA.search(text.strip())
    if match:
        return one_line(match.group(1)), match.group(2)
    lines = text.strip().splitlines()
    question = _Q_LINE.match(lines[0]) if lines else None
    if question and len(lines) > 1:  # an answer without its "A:" label
        return one_line(question.group(1)), " ".join(lines[1:])
    return None


def abstract_chunks(abstract: str, words: int = CHUNK_WORDS) -> list[str]:
    """The abstract in runs of whole sentences of about `words` words."""
    chunks: list[str] = []
    for sentence in split_sentences(abstract):
        if chunks and len(chunks[-1].split()) + len(sentence.split()) <= words:
            chunks[-1] += " " + sentence
        else:
            chunks.append(sentence)
    return chunks


def first_sentence(text: str) -> str:
    text = one_line(text)
    end = text.find("。")
    return text[: end + 1] if end >= 0 else text


def language_problems(text: str, what: str) -> list[str]:
    """Not Japanese enough, Simplified Chinese, garbled katakana-Latin terms, loops."""
    problems = []
    share = textcheck.japanese_share(text)
    if share < MIN_JAPANESE_SHARE:
        problems.append(f"{what} is not Japanese enough (share {share:.2f})")
    chinese = textcheck.chinese_characters(text)
    if chinese:
        problems.append(f"{what} contains Chinese characters: {''.join(dict.fromkeys(chinese))}")
    broken = textcheck.broken_mixed_script(text)
    if broken:
        problems.append(f"{what} has garbled term(s): {', '.join(broken)}")
    if textcheck.repetitive(text):
        problems.append(f"{what} repeats itself")
    return problems


def translation_problems(source: str, text: str, truncated: bool) -> list[str]:
    if not text.strip():
        return ["empty translation"]
    problems = []
    if truncated or textcheck.looks_truncated(text):
        problems.append("translation looks truncated")
    problems.extend(language_problems(text, "translation"))
    if len(text) < 0.25 * len(source):
        problems.append("translation is much shorter than the source (summarised?)")
    missing = sorted(set(textcheck.numbers(source)) - set(textcheck.numbers(text)))
    if missing:
        problems.append(f"numbers of the abstract missing: {', '.join(missing)}")
    return problems


def untranslated_or_text(result: Attempt, chunk: str) -> str:
    """A chunk the model would not translate into Japanese (it echoed the English, or wrote
    Chinese) is shown as the original, marked as such, rather than passing for a translation."""
    if any(is_severe(p) for p in result.problems):
        return f"{UNTRANSLATED}{chunk} "  # a space before the Japanese that follows
    return result.text


def summary_problems(text: str) -> list[str]:
    problems = []
    low, high = SUMMARY_CHARS
    if not low <= len(text) <= high:
        problems.append(f"summary has {len(text)} characters (want 60-120)")
    return problems + language_problems(text, "summary")


def qa_problems(question: str, answer: str, truncated: bool) -> list[str]:
    if not question:
        return ["no question and answer in the output"]
    problems = language_problems(question, "question")
    if not answer:
        return [*problems, "empty answer"]
    if truncated or textcheck.looks_truncated(answer):
        problems.append("answer looks truncated")
    problems.extend(language_problems(answer, "answer"))
    if answer != NO_ANSWER and textcheck.restates(question, answer):
        problems.append("answer mostly restates the question")
    return problems


def page_references(answer: str, pages: dict[int, str]) -> list[int]:
    """Pages whose text holds the answer's concrete details (numbers, Latin-script terms)."""
    details = set(textcheck.numbers(answer)) | textcheck.latin_terms(answer)
    if not details:
        return []
    scores = {}
    for page, text in pages.items():
        index = textcheck.SourceIndex(text)
        hits = len(details & (index.numbers | index.terms))
        if hits:
            scores[page] = hits
    if not scores:
        return []
    best = max(scores.values())
    ranked = sorted((p for p, s in scores.items() if s * 2 >= best), key=lambda p: -scores[p])
    return sorted(ranked[:3])


def answer_pages(answer: str, passage: Sequence[Block], pages: dict[int, str]) -> list[int]:
    """The given passage's pages when the answer uses its details, else pages found by details."""
    passage_pages = {b.page: b.text for b in passage}
    return page_references(answer, passage_pages) or page_references(answer, pages)


def _page_texts(sections: list[Section]) -> dict[int, str]:
    pages: dict[int, list[str]] = {}
    for section in sections:
        for block in section.blocks:
            pages.setdefault(block.page, []).append(block.text)
    return {page: "\n".join(texts) for page, texts in pages.items()}


class PaperDigester:
    """Turns one paper into a DigestRecord with one backend. Implements batch.Worker."""

    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend | None = None,
        backend_factory: Callable[[int], Backend] | None = None,
        prompts: PromptSet | None = None,
        metadata_file: str | None = None,
        model_identity: dict[str, Any] | None = None,
    ) -> None:
        """Give either a ready backend or a factory called with the context size when needed."""
        self.settings = settings
        self.prompts = prompts or PromptSet(Path(settings.prompts) if settings.prompts else None)
        self._backend = backend
        self._backend_factory = backend_factory
        self._metadata_file = metadata_file
        self._metadata_index: Any = None
        self._model_identity = model_identity
        self._tokens_per_second: float | None = None  # of the latest generation, for progress

    # -- batch.Worker -------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        """What determines a record besides the PDF; cheap: does not load the model."""
        identity = self._model_identity or self._identity_from_backend()
        return {
            "model_sha256": identity.get("sha256") or identity.get("name"),
            "prompt_version": self.prompts.version,
            "options": self._options(),
            "metadata_file": self._metadata_file,
        }

    def process(
        self, name: str, data: bytes, on_stage: StageCallback | None = None
    ) -> DigestRecord:
        from localdigest import extract

        started = time.perf_counter()
        self._report(on_stage, "extract", {})
        paper = extract.paper_from_bytes(data, name, max_pages=self.settings.max_pages)
        paper = self._with_metadata(paper)
        extract_seconds = time.perf_counter() - started
        record = self.digest(paper, on_stage)
        record.stats["extract_seconds"] = round(extract_seconds, 3)
        return record

    # -- the pipeline ---------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            if self._backend_factory is None:
                raise RuntimeError("PaperDigester needs a backend or a backend_factory")
            self._backend = self._backend_factory(self.context_size())
        return self._backend

    def context_size(self) -> int:
        """The context window to request: the paper budget plus room for tasks and output."""
        return self.settings.ctx or (
            self.settings.paper_tokens + RESERVED_TOKENS + self._excerpt_tokens()
        )

    def _excerpt_tokens(self) -> int:
        return EXCERPT_TOKENS * self.settings.questions

    def digest(self, paper: Paper, on_stage: StageCallback | None = None) -> DigestRecord:
        """Generate all outputs for an extracted paper."""
        started = time.perf_counter()
        log = StageLog()
        warnings = list(paper.warnings)
        prepared = self.prepare(paper, log, on_stage)
        plan, prefix = prepared.plan, prepared.prefix

        abstract_ja = self._translate_abstract(paper, prefix, log, warnings, on_stage)
        summary_ja = self._summarise(prefix, log, warnings, on_stage)
        qa = self.answer_questions(prepared, log, warnings, on_stage)

        stats = log.as_dict()
        stats["seconds"] = round(time.perf_counter() - started, 3)
        stats["paper_tokens"] = plan.tokens
        return DigestRecord(
            source_path=paper.path,
            source_sha256=paper.sha256,
            metadata=paper.metadata,
            abstract_ja=abstract_ja,
            summary_ja=summary_ja,
            qa=qa,
            warnings=warnings,
            left_out=plan.left_out,
            provenance=self._provenance(),
            stats=stats,
        )

    def prepare(
        self, paper: Paper, log: StageLog | None = None, on_stage: StageCallback | None = None
    ) -> Prepared:
        """Choose the paper's context and its questions' excerpts; render the shared prefix
        (condensing sections that do not fit into notes, with the model, on the way)."""
        budget = self.backend.info.n_ctx - RESERVED_TOKENS - self._excerpt_tokens()
        plan = plan_context(
            paper, self.backend.count_tokens, min(budget, self.settings.paper_tokens)
        )
        questions = self.plan_questions(plan)
        prefix = self._paper_prefix(paper, plan, questions, log or StageLog(), on_stage)
        return Prepared(plan, questions, prefix)

    def plan_questions(self, plan: ContextPlan) -> list[Question]:
        """One question per aspect, in order, repeated past the last aspect; each gets the
        sentences of the paper that answer its aspect best, different from the others'."""
        aspects = self.prompts.aspects
        chosen = [aspects[i % len(aspects)] for i in range(self.settings.questions)]
        passages = pick_passages(plan.verbatim, [a.cues for a in chosen])
        return [
            Question(i + 1, aspect, tuple(passage), i // len(aspects) + 1)
            for i, (aspect, passage) in enumerate(zip(chosen, passages, strict=True))
        ]

    def _paper_prefix(
        self,
        paper: Paper,
        plan: ContextPlan,
        questions: list[Question],
        log: StageLog,
        on_stage: StageCallback | None,
    ) -> str:
        """The shared first part of every prompt: the chosen paper text (and notes), with each
        question's excerpt moved from the body to the numbered excerpts after it."""
        moved = frozenset(block for q in questions for block in q.passage)
        condensed = {id(s) for s in plan.to_condense}
        parts = []
        for section in plan.sections_in_order(paper):
            if id(section) in condensed:
                self._report(on_stage, "notes", {"section": section.title})
                notes = self._section_notes(paper, section, log)
                parts.append(f"## {section.title}（要点メモ）\n{notes}")
            else:
                parts.append(section_context(section, moved))
        context = "\n\n".join(parts)
        passages = [passage_text(q.passage) for q in questions]
        shown = "\n".join([context, *passages])
        terms = glossary.terms_in(shown) if self.settings.glossary else []
        excerpt_views = [
            {
                "number": q.number,
                "aspect": q.aspect.label,
                "passage": passage,
            }
            for q, passage in zip(questions, passages, strict=True)
        ]
        return self.prompts.render(
            "paper.j2",
            title=paper.metadata.title or "（題名不明）",
            context=context,
            left_out=plan.left_out,
            glossary=terms,
            excerpts=excerpt_views,
        )

    def _section_notes(self, paper: Paper, section: Section, log: StageLog) -> str:
        """Map step: condense a section that does not fit into short notes (its own chat)."""
        budget = self.backend.info.n_ctx - RESERVED_TOKENS
        text = section.text
        while self.backend.count_tokens(text) > budget and len(text) > 1000:
            text = text[: int(len(text) * 0.8)]  # only the part that fits is condensed
        prompt = self.prompts.render(
            "notes.j2",
            title=paper.metadata.title or "",
            section=section.title,
            pages=", ".join(map(str, section.pages)),
            text=text,
        )
        messages = [self._system(), Message("user", prompt)]
        completion = self.backend.chat(messages, self._options_for(256, 0))
        self._record(log, "notes", completion.stats)
        return completion.text.strip()

    def _translate_abstract(
        self,
        paper: Paper,
        prefix: str,
        log: StageLog,
        warnings: list[str],
        on_stage: StageCallback | None,
    ) -> str | None:
        abstract = paper.metadata.abstract or self._abstract_fallback(paper, warnings)
        if not abstract:
            warnings.append("概要: no abstract found in the paper; nothing to translate")
            return None
        self._report(on_stage, "abstract", {})
        chunks = abstract_chunks(abstract)
        tasks = [self.prompts.render("abstract.j2", abstract=chunk) for chunk in chunks]

        def task(i: int, _: list[Attempt | None]) -> str:
            return tasks[i]

        max_tokens = max(self.backend.count_tokens(chunk) for chunk in chunks) * 2 + 64

        def check(i: int, completion: Completion) -> Attempt:
            truncated = completion.finish_reason == "length"
            text = _TRANSLATION_END.split(one_line(completion.text))[0]
            return Attempt(text, translation_problems(chunks[i], text, truncated))

        results = self._run_tasks(prefix, len(tasks), task, max_tokens, check, "abstract", log)
        warnings.extend(f"概要: {p}" for r in results for p in r.problems)
        texts = (untranslated_or_text(r, c) for r, c in zip(results, chunks, strict=True))
        return "".join(texts).strip() or None

    def _abstract_fallback(self, paper: Paper, warnings: list[str]) -> str | None:
        for section in paper.sections:
            if section.kind in (ABSTRACT, BODY) and section.blocks:
                warnings.append(
                    f"概要: no abstract found; translated the first paragraph of '{section.title}'"
                )
                return section.blocks[0].text
        return None

    def _summarise(
        self, prefix: str, log: StageLog, warnings: list[str], on_stage: StageCallback | None
    ) -> str | None:
        self._report(on_stage, "summary", {})
        summary_task = self.prompts.render("summary.j2")

        def task(i: int, _: list[Attempt | None]) -> str:
            return summary_task

        def check(i: int, completion: Completion) -> Attempt:
            text = completion.text.rstrip()
            if completion.finish_reason == "stop" and textcheck.looks_truncated(text):
                text += "。"  # the stop string itself is not returned
            text = first_sentence(text)
            return Attempt(text, summary_problems(text))

        (result,) = self._run_tasks(prefix, 1, task, 200, check, "summary", log, stop=["。"])
        warnings.extend(f"summary: {p}" for p in result.problems)
        return result.text or None

    def answer_questions(
        self,
        prepared: Prepared,
        log: StageLog,
        warnings: list[str],
        on_stage: StageCallback | None = None,
    ) -> list[QAPair]:
        """One question-and-answer call per planned question; near-duplicates are redone."""
        questions = prepared.questions
        source = textcheck.SourceIndex("\n".join(s.text for s in prepared.plan.verbatim))
        self._report(on_stage, "qa", {"count": len(questions)})

        def task(i: int, best: list[Attempt | None]) -> str:
            previous = best[i]
            return self.qa_task(questions[i], distinct=bool(previous and previous.conflicts))

        def check(i: int, completion: Completion) -> Attempt:
            question, raw_answer = parse_qa(QA_PREFILL + completion.text) or ("", completion.text)
            if not raw_answer.strip():
                return Attempt("", qa_problems("", "", False))
            question = as_question(question, questions[i].aspect.label)
            truncated = completion.finish_reason == "length"
            answer = without_unknown_numbers(clean_answer(raw_answer, question, truncated), source)
            complete = not truncated or answer.endswith(("。", "！", "？"))
            problems = qa_problems(question, answer, not complete)
            if answer != NO_ANSWER and not source.concrete_details(answer, question):
                problems.append("answer carries no number or name from the paper")
            invented = source.unknown_numbers(answer)
            if invented:
                problems.append(f"numbers not in the paper: {', '.join(invented)}")
            return Attempt(answer, problems, question)

        def duplicates(results: list[Attempt]) -> None:
            asked = [r.question for r in results]
            for _, later in textcheck.near_duplicates(asked):
                results[later].conflicts.append("question duplicates an earlier one")

        results = self._run_tasks(
            prepared.prefix, len(questions), task, QA_TOKENS, check, "qa", log, duplicates,
            QA_STOP, QA_PREFILL,
        )  # fmt: skip
        for result, question in zip(results, questions, strict=True):
            if result.conflicts:  # still a duplicate after the retries: the aspect's own question
                result.problems.append(f"question replaced by its aspect's: {result.question}")
                result.question, result.conflicts = aspect_question(question.aspect.label), []
        duplicates(results)  # a duplicate that remains keeps its warning
        pages = _page_texts(prepared.plan.verbatim)
        qa = [
            QAPair(r.question, r.text, answer_pages(r.text, q.passage, pages), r.warnings)
            for r, q in zip(results, questions, strict=True)
            if r.question
        ]
        if len(qa) < len(questions):
            warnings.append(f"Q&A: {len(qa)} of {len(questions)} pairs could be produced")
        return qa

    def qa_task(self, question: Question, distinct: bool = False) -> str:
        """The Q&A task of a planned question: its excerpt's number and aspect. `distinct`
        (a further question, or a duplicate redone) asks for a less common detail."""
        return self.prompts.render(
            "qa.j2",
            number=question.number,
            aspect=question.aspect.label,
            distinct=distinct or question.round > 1,
        )

    def _run_tasks(
        self,
        prefix: str,
        count: int,
        task: Callable[[int, list[Attempt | None]], str],
        max_tokens: int,
        check: Callable[[int, Completion], Attempt],
        stage: str,
        log: StageLog,
        check_all: Callable[[list[Attempt]], None] | None = None,
        stop: list[str] | None = None,
        prefill: str = "",
    ) -> list[Attempt]:
        """Run independent tasks on the shared prefix; retry the failing ones, keep the best.

        Args:
            task: the prompt of task i, given the best results so far (None: not yet run).
            check: validates task i's completion (its text comes after `prefill`). check_all:
                sets the conflicts that concern several results (e.g. duplicates) each round.
        """
        best: list[Attempt | None] = [None] * count
        pending = list(range(count))
        for attempt in range(self.settings.retries + 1):
            completions = self.backend.chat_many(
                [self.messages(prefix, task(i, best)) for i in pending],
                self._options_for(max_tokens, attempt, stop, prefill),
            )
            for i, completion in zip(pending, completions, strict=True):
                self._record(log, stage, completion.stats)
                current = check(i, completion)
                previous = best[i]
                if previous is None or severity(current.problems) < severity(previous.warnings):
                    best[i] = current
            results = [r for r in best if r is not None]
            if check_all is not None and len(results) == len(best):
                for r in results:
                    r.conflicts = []
                check_all(results)
            pending = [i for i, r in enumerate(best) if r is None or r.warnings]
            if not pending:
                break
            if attempt < self.settings.retries:
                log.retrying(stage, [failed for i in pending if (failed := best[i]) is not None])
        return [r for r in best if r is not None]

    def _system(self) -> Message:
        return Message("system", self.prompts.render("system.j2"))

    def messages(self, prefix: str, task: str) -> list[Message]:
        """System prompt, then one user message: the shared paper prefix first, the task last."""
        return [self._system(), Message("user", f"{prefix}\n\n{task}")]

    def _options_for(
        self, max_tokens: int, attempt: int, stop: list[str] | None = None, prefill: str = ""
    ) -> GenerationOptions:
        """Retries change the seed and raise the temperature to leave a bad output's basin."""
        base = self.settings
        return GenerationOptions(
            max_tokens=min(max_tokens, base.max_tokens),
            temperature=min(1.0, base.temperature + 0.3 * attempt),
            seed=base.seed + attempt,
            stop=list(stop or []),
            prefill=prefill,
        )

    def _record(self, log: StageLog, stage: str, stats: CallStats) -> None:
        log.add(stage, stats)
        if stats.generation_seconds > 0:
            self._tokens_per_second = stats.generated_tokens / stats.generation_seconds

    def _options(self) -> dict[str, Any]:
        s = self.settings
        return {
            "questions": s.questions,
            "temperature": s.temperature,
            "seed": s.seed,
            "retries": s.retries,
            "max_tokens": s.max_tokens,
            "paper_tokens": s.paper_tokens,
            "ctx": s.ctx,
            "glossary": s.glossary,
            "max_pages": s.max_pages,
        }

    def _identity_from_backend(self) -> dict[str, Any]:
        info = self.backend.info
        return {"name": info.name, "sha256": info.sha256}

    def _provenance(self) -> dict[str, Any]:
        info = self.backend.info
        return {
            "model": info.name,
            "model_sha256": info.sha256,
            "model_path": info.path,
            "architecture": info.architecture,
            "n_ctx": info.n_ctx,
            "runtime": info.params,
            "prompt_version": self.prompts.version,
            "options": self._options(),
            "localdigest_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def _with_metadata(self, paper: Paper) -> Paper:
        if not self._metadata_file:
            return paper
        from localdigest import metadata

        if self._metadata_index is None:
            self._metadata_index = metadata.MetadataIndex.open(self._metadata_file)
        return metadata.apply(paper, self._metadata_index)

    def _report(self, on_stage: StageCallback | None, stage: str, info: dict[str, Any]) -> None:
        if on_stage is not None:
            if self._tokens_per_second:
                info = {**info, "tokens_per_second": round(self._tokens_per_second, 1)}
            on_stage(stage, info)
