"""Generate a paper's Japanese digest: 概要 (abstract translation), one-line summary, grounded Q&A.

Design: the paper context is the first part of every prompt, so the backend evaluates it once
and each later call only evaluates its own short task (prefix reuse). Questions are generated
first, then each is answered against the cached paper. Every output is validated; failures are
retried with another seed and a higher temperature, and what still fails is kept with warnings.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localdigest import __version__, glossary, textcheck
from localdigest.backend import Backend, CallStats, Completion, GenerationOptions, Message
from localdigest.budget import ContextPlan, plan_context, section_context
from localdigest.config import Settings
from localdigest.paper import ABSTRACT, BODY, Paper, Section
from localdigest.prompts import PromptSet
from localdigest.record import DigestRecord, QAPair

StageCallback = Callable[[str, dict[str, Any]], None]

# Tokens kept free beside the paper: the longest task (abstract translation with the abstract
# itself) plus its output.
RESERVED_TOKENS = 1800
NO_ANSWER = "論文には記載がありません。"
MIN_JAPANESE_SHARE = 0.7
SUMMARY_CHARS = (40, 160)  # accepted; the prompt asks for 60-120
ANSWER_TOKENS = 256  # 2-4 Japanese sentences; longer output is rambling, cut at a sentence

_QUESTION_LINE = re.compile(r"^\s*(?:Q|Ｑ|質問)\s*(\d+)\s*[:：.．)）]\s*(.+?)\s*$")
_ANSWER_PREFIX = re.compile(r"^\s*(?:A\d*|Ａ|回答|答え)\s*[:：]\s*")


@dataclass
class Attempt:
    text: str
    problems: list[str]


@dataclass
class _StageLog:
    """Token counts and seconds per stage, plus how many retries each stage needed."""

    stages: dict[str, CallStats] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)

    def add(self, stage: str, stats: CallStats) -> None:
        self.stages.setdefault(stage, CallStats()).add(stats)

    def as_dict(self) -> dict[str, Any]:
        total = CallStats()
        for stats in self.stages.values():
            total.add(stats)
        return {
            "stages": {name: vars(stats) for name, stats in self.stages.items()},
            "retries": dict(self.retries),
            "total": vars(total),
        }


def clean_answer(text: str, question: str, truncated: bool) -> str:
    """One line of answer: no "A:" label, no echo of the question, no unfinished sentence."""
    text = " ".join(_ANSWER_PREFIX.sub("", text.strip()).split())
    for echo in (question, question.rstrip("？?") + "。"):
        if text.startswith(echo):
            text = text[len(echo) :].lstrip()
    return textcheck.cut_to_last_sentence(text) if truncated else text


def language_problems(text: str, what: str) -> list[str]:
    """Not Japanese enough, Simplified Chinese characters, garbled katakana-Latin terms."""
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
    return problems


def parse_questions(text: str) -> list[str]:
    """Questions from the `Q1: ...` line format, in order, without the placeholder echo."""
    found = []
    for line in text.splitlines():
        match = _QUESTION_LINE.match(line)
        if match and match.group(2) not in {"（質問文）", "(質問文)"}:
            found.append(match.group(2).strip())
    return found


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find("。")
    return text[: end + 1] if end >= 0 else text


def translation_problems(abstract: str, text: str, truncated: bool) -> list[str]:
    problems = []
    if not text.strip():
        return ["empty translation"]
    if truncated or textcheck.looks_truncated(text):
        problems.append("translation looks truncated")
    problems.extend(language_problems(text, "translation"))
    if len(text) < 0.25 * len(abstract):
        problems.append("translation is much shorter than the abstract (summarised?)")
    missing = sorted(set(textcheck.numbers(abstract)) - set(textcheck.numbers(text)))
    if missing:
        problems.append(f"numbers of the abstract missing: {', '.join(missing)}")
    return problems


def summary_problems(text: str) -> list[str]:
    problems = []
    low, high = SUMMARY_CHARS
    if not low <= len(text) <= high:
        problems.append(f"summary has {len(text)} characters (want 60-120)")
    return problems + language_problems(text, "summary")


def question_problems(questions: list[str], wanted: int) -> list[str]:
    problems = []
    if len(questions) < wanted:
        problems.append(f"{len(questions)} of {wanted} questions")
    for i, j in textcheck.near_duplicates(questions):
        problems.append(f"questions {i + 1} and {j + 1} are near-duplicates")
    for i, question in enumerate(questions):
        if textcheck.japanese_share(question) < MIN_JAPANESE_SHARE:
            problems.append(f"question {i + 1} is not Japanese")
    return problems


def answer_problems(question: str, answer: str, truncated: bool) -> list[str]:
    if not answer:
        return ["empty answer"]
    problems = []
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
        return self.settings.ctx or self.settings.paper_tokens + RESERVED_TOKENS

    def digest(self, paper: Paper, on_stage: StageCallback | None = None) -> DigestRecord:
        """Generate all outputs for an extracted paper."""
        started = time.perf_counter()
        backend = self.backend
        log = _StageLog()
        warnings = list(paper.warnings)
        budget = backend.info.n_ctx - RESERVED_TOKENS
        plan = plan_context(paper, backend.count_tokens, min(budget, self.settings.paper_tokens))
        prefix = self._paper_prefix(paper, plan, log, on_stage)

        abstract_ja = self._translate_abstract(paper, prefix, log, warnings, on_stage)
        summary_ja = self._summarise(prefix, log, warnings, on_stage)
        questions = self._questions(prefix, log, warnings, on_stage)
        qa = self._answers(questions, prefix, plan, paper, log, on_stage)

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

    def _paper_prefix(
        self, paper: Paper, plan: ContextPlan, log: _StageLog, on_stage: StageCallback | None
    ) -> str:
        """The shared first part of every prompt: the chosen paper text (and notes)."""
        condensed = {id(s) for s in plan.to_condense}
        parts = []
        for section in plan.sections_in_order(paper):
            if id(section) in condensed:
                self._report(on_stage, "notes", {"section": section.title})
                notes = self._section_notes(paper, section, log)
                parts.append(f"## {section.title}（要点メモ）\n{notes}")
            else:
                parts.append(section_context(section))
        context = "\n\n".join(parts)
        terms = glossary.terms_in(context) if self.settings.glossary else []
        return self.prompts.render(
            "paper.j2",
            title=paper.metadata.title or "（題名不明）",
            context=context,
            left_out=plan.left_out,
            glossary=terms,
        )

    def _section_notes(self, paper: Paper, section: Section, log: _StageLog) -> str:
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
        completion = self._call([self._system(), Message("user", prompt)], 256, 0, log, "notes")
        return completion.text.strip()

    def _translate_abstract(
        self,
        paper: Paper,
        prefix: str,
        log: _StageLog,
        warnings: list[str],
        on_stage: StageCallback | None,
    ) -> str | None:
        abstract = paper.metadata.abstract or self._abstract_fallback(paper, warnings)
        if not abstract:
            warnings.append("概要: no abstract found in the paper; nothing to translate")
            return None
        self._report(on_stage, "abstract", {})
        task = self.prompts.render("abstract.j2", abstract=abstract)
        max_tokens = min(self.settings.max_tokens, 2 * self.backend.count_tokens(abstract) + 128)

        def attempt(n: int) -> Attempt:
            completion = self._call(self._messages(prefix, task), max_tokens, n, log, "abstract")
            text = " ".join(completion.text.split())
            truncated = completion.finish_reason == "length"
            return Attempt(text, translation_problems(abstract, text, truncated))

        # One retry at most: a translation is the longest output, a retry costs a minute here.
        return self._best_of(attempt, "abstract", "概要", log, warnings, retries=1)

    def _abstract_fallback(self, paper: Paper, warnings: list[str]) -> str | None:
        for section in paper.sections:
            if section.kind in (ABSTRACT, BODY) and section.blocks:
                warnings.append(
                    f"概要: no abstract found; translated the first paragraph of '{section.title}'"
                )
                return section.blocks[0].text
        return None

    def _summarise(
        self, prefix: str, log: _StageLog, warnings: list[str], on_stage: StageCallback | None
    ) -> str | None:
        self._report(on_stage, "summary", {})
        task = self.prompts.render("summary.j2")

        def attempt(n: int) -> Attempt:
            completion = self._call(self._messages(prefix, task), 200, n, log, "summary")
            text = first_sentence(completion.text)
            return Attempt(text, summary_problems(text))

        return self._best_of(attempt, "summary", "summary", log, warnings)

    def _questions(
        self, prefix: str, log: _StageLog, warnings: list[str], on_stage: StageCallback | None
    ) -> list[str]:
        wanted = self.settings.questions
        aspects = [self.prompts.aspects[i % len(self.prompts.aspects)] for i in range(wanted)]
        task = self.prompts.render("questions.j2", count=wanted, aspects=aspects)
        self._report(on_stage, "questions", {"count": wanted})
        kept: list[str] = []
        for n in range(self.settings.retries + 1):
            completion = self._call(
                self._messages(prefix, task), 70 * wanted + 64, n, log, "questions"
            )
            for question in parse_questions(completion.text):
                duplicate = any(
                    textcheck.similarity(question, k) >= textcheck.DUPLICATE_SIMILARITY
                    for k in kept
                )
                if not duplicate and not language_problems(question, "question"):
                    kept.append(question)
            if len(kept) >= wanted:
                break
            log.retries["questions"] = n + 1
        problems = question_problems(kept[:wanted], wanted)
        warnings.extend(f"Q&A: {p}" for p in problems)
        return kept[:wanted]

    def _answers(
        self,
        questions: list[str],
        prefix: str,
        plan: ContextPlan,
        paper: Paper,
        log: _StageLog,
        on_stage: StageCallback | None,
    ) -> list[QAPair]:
        if not questions:
            return []
        self._report(on_stage, "answers", {"count": len(questions)})
        pages = _page_texts(plan.verbatim)
        tasks = [self.prompts.render("answer.j2", question=q) for q in questions]
        best: list[Attempt | None] = [None] * len(questions)
        pending = list(range(len(questions)))
        for n in range(self.settings.retries + 1):
            completions = self.backend.chat_many(
                [self._messages(prefix, tasks[i]) for i in pending],
                self._options_for(ANSWER_TOKENS, n),
            )
            for i, completion in zip(pending, completions, strict=True):
                self._record(log, "answers", completion.stats)
                truncated = completion.finish_reason == "length"
                text = clean_answer(completion.text, questions[i], truncated)
                # A cut-off answer trimmed to whole sentences is complete enough to keep.
                complete = not truncated or text.endswith(("。", "！", "？"))
                current = Attempt(text, answer_problems(questions[i], text, not complete))
                previous = best[i]
                if previous is None or len(current.problems) < len(previous.problems):
                    best[i] = current
            pending = [i for i in pending if best[i] and best[i].problems]  # type: ignore[union-attr]
            if not pending:
                break
            log.retries["answers"] = log.retries.get("answers", 0) + len(pending)
        qa = []
        for question, result in zip(questions, best, strict=True):
            assert result is not None
            qa.append(
                QAPair(
                    question=question,
                    answer=result.text,
                    pages=page_references(result.text, pages),
                    warnings=result.problems,
                )
            )
        return qa

    # -- helpers -----------------------------------------------------------------------------

    def _best_of(
        self,
        attempt: Callable[[int], Attempt],
        stage: str,
        label: str,
        log: _StageLog,
        warnings: list[str],
        retries: int | None = None,
    ) -> str | None:
        """Run attempts until one passes every check; keep the one with the fewest problems."""
        best: Attempt | None = None
        limit = self.settings.retries if retries is None else min(retries, self.settings.retries)
        for n in range(limit + 1):
            current = attempt(n)
            if best is None or len(current.problems) < len(best.problems):
                best = current
            if not best.problems:
                break
            log.retries[stage] = n + 1
        assert best is not None
        warnings.extend(f"{label}: {p}" for p in best.problems)
        return best.text or None

    def _system(self) -> Message:
        return Message("system", self.prompts.render("system.j2"))

    def _messages(self, prefix: str, task: str) -> list[Message]:
        """System prompt, then one user message: the shared paper prefix first, the task last."""
        return [self._system(), Message("user", f"{prefix}\n\n{task}")]

    def _options_for(self, max_tokens: int, attempt: int) -> GenerationOptions:
        """Retries change the seed and raise the temperature to leave a bad output's basin."""
        base = self.settings
        return GenerationOptions(
            max_tokens=min(max_tokens, base.max_tokens),
            temperature=min(1.0, base.temperature + 0.3 * attempt),
            seed=base.seed + attempt,
        )

    def _call(
        self, messages: list[Message], max_tokens: int, attempt: int, log: _StageLog, stage: str
    ) -> Completion:
        completion = self.backend.chat(messages, self._options_for(max_tokens, attempt))
        self._record(log, stage, completion.stats)
        return completion

    def _record(self, log: _StageLog, stage: str, stats: CallStats) -> None:
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
