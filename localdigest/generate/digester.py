"""One paper's digest, stage by stage: 概要, summary, question choice, answers.

The model does only what it does well (issue 14): it translates one English sentence at a time
(translate.py), and it reads English to choose which of the paper's sentences answers a question
(select.py) and to state the paper's point in one English sentence for the summary. Every
Japanese sentence keeps the English it renders, every answer the paper sentences it rests on
(with their pages), so a reader can check each statement; every output is checked and retried,
and what still fails stays on the item as a warning.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localdigest import __version__, glossary, textcheck
from localdigest.backend import Backend, CallStats, Completion
from localdigest.config import Settings
from localdigest.generate import checks
from localdigest.generate.questions import Asked, QuestionWriter
from localdigest.generate.select import Pick, SentencePicker, candidates, split_sentences
from localdigest.generate.tasks import Attempt, StageLog, TaskRunner, first_paragraph, reading
from localdigest.generate.translate import Translator
from localdigest.paper import ABSTRACT, BODY, Paper
from localdigest.prompts import PromptSet
from localdigest.record import DigestRecord, Evidence, Problem, QAPair, SentencePair

# (stage, detail): a paper's report as work proceeds, e.g. ("qa", {"tokens_per_second": 14.2}).
StageCallback = Callable[[str, dict[str, Any]], None]

TASK_TOKENS = 1536  # the longest single task (a shortlist or an abstract) with its output
SUMMARY_WORDS = 40  # the English summary's limit (the prompt asks for 30)
SUMMARY_CHARS = (30, 160)  # its Japanese translation


class PaperDigester:
    """Turns one extracted paper into a DigestRecord with one backend (pipeline.DigestWorker
    runs the stages before it)."""

    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend | None = None,
        backend_factory: Callable[[int], Backend] | None = None,
        prompts: PromptSet | None = None,
        model_identity: dict[str, Any] | None = None,
    ) -> None:
        """Give either a ready backend or a factory called with the context size when needed."""
        self.settings = settings
        self.prompts = prompts or PromptSet(Path(settings.prompts) if settings.prompts else None)
        self._backend = backend
        self._backend_factory = backend_factory
        self._model_identity = model_identity
        self._tokens_per_second: float | None = None  # of the latest generation, for progress

    def fingerprint(self) -> dict[str, Any]:
        """What determines a record besides the PDF; cheap: does not load the model."""
        identity = self._model_identity or self._identity_from_backend()
        return {
            "model_sha256": identity.get("sha256") or identity.get("name"),
            "prompt_version": self.prompts.version,
            "options": self._options(),
        }

    # -- the pipeline ---------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            if self._backend_factory is None:
                raise RuntimeError("PaperDigester needs a backend or a backend_factory")
            self._backend = self._backend_factory(self.context_size())
        return self._backend

    def context_size(self) -> int:
        """The context window to request: no task carries the paper, only a few sentences."""
        return self.settings.ctx or TASK_TOKENS

    def digest(self, paper: Paper, on_stage: StageCallback | None = None) -> DigestRecord:
        """Generate all outputs for an extracted paper, from a model state that no earlier
        paper left (the same paper gives the same digest in any batch, shard or order)."""
        self.backend.forget()
        started = time.perf_counter()
        log = StageLog()
        runner = TaskRunner(self.backend, self.settings, log, self._note_rate)
        warnings = list(paper.warnings)
        self.report(on_stage, "abstract", {})
        abstract = self._abstract(paper, warnings)
        translator = Translator(
            self.prompts,
            runner,
            self.settings.glossary,
            self.settings.min_score,
            glossary.key_terms(paper.metadata.title or "", abstract),
        )
        abstract_pairs = translator.translate(split_sentences(abstract), "abstract")
        self.report(on_stage, "summary", {})
        summary_source, summary_pairs = self._summary(
            paper, abstract, runner, translator, abstract_pairs
        )
        self.report(on_stage, "select", {})
        pool, left_out = candidates(paper)
        picker = SentencePicker(self.prompts, runner)
        picks, reserve, outcomes = picker.pick(paper, pool, self.settings.questions)
        self.report(on_stage, "qa", {"count": len(picks)})
        writer = QuestionWriter(self.prompts, runner, translator, self.settings.min_answer)
        asked, not_asked = writer.ask(paper, picks, reserve)
        qa = self._answers([a.pick for a in asked], [a.question.text for a in asked], translator)
        if len(qa) < self.settings.questions:
            warnings.append(_fewer_questions(len(qa), self.settings.questions, len(not_asked)))
        stats = log.as_dict()
        stats["seconds"] = round(time.perf_counter() - started, 3)
        stats["candidate_sentences"] = len(pool)
        stats["aspects"] = _as_asked(outcomes, picks, asked)
        stats["questions"] = [a.question.how for a in asked]
        stats["answered"] = [round(a.answered, 3) for a in asked]
        stats["not_asked"] = not_asked
        summary_warnings = [p for pair in summary_pairs for p in pair.warnings]
        return DigestRecord(
            source_path=paper.path,
            source_sha256=paper.sha256,
            metadata=paper.metadata,
            abstract_ja=joined(abstract_pairs),
            summary_ja=joined(summary_pairs),
            abstract_sentences=abstract_pairs,
            summary_source=summary_source,
            summary_warnings=summary_warnings,
            qa=qa,
            warnings=warnings,
            left_out=left_out,
            provenance=self._provenance(),
            stats=stats,
        )

    def _abstract(self, paper: Paper, warnings: list[str]) -> str:
        if paper.metadata.abstract:
            return paper.metadata.abstract
        for section in paper.sections:
            if section.kind in (ABSTRACT, BODY) and section.blocks:
                warnings.append(
                    f"概要: no abstract found; translated the first paragraph of '{section.title}'"
                )
                return section.blocks[0].text
        warnings.append("概要: no abstract found in the paper; nothing to translate")
        return ""

    def _summary(
        self,
        paper: Paper,
        abstract: str,
        runner: TaskRunner,
        translator: Translator,
        abstract_pairs: list[SentencePair],
    ) -> tuple[str | None, list[SentencePair]]:
        """One English sentence on what the paper proposes or shows, from its abstract, then
        translated: the English (kept on the record) is what a reader checks it against.

        Where the model's English still fails an objective check after its retries, the
        abstract's first sentence stands in: the mark for English left untranslated promises
        the paper's own words, never a model's (a base model's 'summary' went on writing our
        prompt, issue 24).
        """
        if not abstract:
            return None, []
        chat = reading(
            self.prompts, "summary.j2", title=paper.metadata.title or "", abstract=abstract
        )
        instructions = self.prompts.render("summary.j2", title="", abstract="")

        def check(_: int, completion: Completion) -> Attempt:
            text = first_paragraph(completion.text)
            return Attempt(text, summary_problems(text, abstract, instructions))

        (english,) = runner.run("summary", [chat], check, 80)
        failed = checks.objective_count(english.problems) or not english.text
        if failed and abstract_pairs:
            first = abstract_pairs[0]
            reason = "; ".join(map(str, english.problems)) or "empty"
            note = Problem("summary replaced", f"by the abstract's first sentence ({reason})")
            return first.source, [dataclasses.replace(first, warnings=[*first.warnings, note])]
        if not english.text:
            return None, []
        (pair,) = translator.translate([english.text], "summary")
        pair.warnings = english.problems + pair.warnings + _length_problems(pair)
        return english.text, [pair]

    def _answers(
        self, picks: list[Pick], questions: list[str], translator: Translator
    ) -> list[QAPair]:
        """Each answer is the translation of the sentence(s) its question was chosen for."""
        sources = [pick.candidate.sentences for pick in picks]
        flat = [sentence for group in sources for sentence in group]
        translated = iter(translator.translate(flat, "qa"))
        qa = []
        for pick, question, group in zip(picks, questions, sources, strict=True):
            pairs = _answer_shown([next(translated) for _ in group], self.settings.min_answer_score)
            page = pick.candidate.page
            scores = [p.score for p in pairs if p.score is not None]
            english = any(p.untranslated for p in pairs)  # then all are
            qa.append(
                QAPair(
                    question=question,
                    answer=joined(pairs) or "",
                    pages=[page],
                    warnings=[w for pair in pairs for w in pair.warnings],
                    evidence=[Evidence(sentence, page) for sentence in group],
                    aspect=pick.aspect.key,
                    score=min(scores) if scores else None,
                    english_shown=english,
                    attempt="".join(p.attempt for p in pairs) if english else "",
                )
            )
        return qa

    # -- provenance ----------------------------------------------------------------------------

    def _note_rate(self, stats: CallStats) -> None:
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
            "ctx": s.ctx,
            "glossary": s.glossary,
            "min_score": s.min_score,
            "min_answer_score": s.min_answer_score,
            "min_answer": s.min_answer,
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

    def report(self, on_stage: StageCallback | None, stage: str, info: dict[str, Any]) -> None:
        """Tell `on_stage` which stage a paper is in, with the latest generation rate."""
        if on_stage is not None:
            if self._tokens_per_second:
                info = {**info, "tokens_per_second": round(self._tokens_per_second, 1)}
            on_stage(stage, info)


def joined(pairs: list[SentencePair]) -> str | None:
    """The Japanese sentences as one text; each English sentence the model left untranslated
    carries its own mark (under one mark for a run, a strict judge read the later sentences as
    English copied without a mark: issue 25, tenth pass)."""
    return "".join(p.shown + (" " if p.untranslated else "") for p in pairs).strip() or None


def _answer_shown(pairs: list[SentencePair], min_score: float) -> list[SentencePair]:
    """The answer's sentences as shown: in Japanese only where every one of them is, and scored
    `min_score` or more; else all as the marked English (judged digests: a low-scored answer was
    supported by the paper half as often as the rest, one mixing Japanese and English sentences
    8 times of 22, one wholly in English 28 of 30; benchmarks/README.md, "Answers in English
    below -2.4")."""
    if all(not p.untranslated and (p.score is None or p.score >= min_score) for p in pairs):
        return pairs
    return [
        p
        if p.untranslated
        else dataclasses.replace(p, text=p.source, untranslated=True, attempt=p.text)
        for p in pairs
    ]


def _as_asked(outcomes: dict[str, str], picks: list[Pick], asked: list[Asked]) -> dict[str, str]:
    """The selection's outcome of each aspect, saying where its question was asked in a place
    left free, or not asked (the answer check: stats.not_asked says why)."""
    result = dict(outcomes)
    chosen = {p.slot for p in picks}
    for slot in chosen - {a.pick.slot for a in asked}:
        result[slot] += "; not asked: its sentence was not read as answering its question"
    for a in asked:
        if a.pick.slot not in chosen:
            index, page = a.pick.candidate.index, a.pick.candidate.page
            result[a.pick.slot] += f"; asked of sentence {index} (p. {page}) in a place left free"
    return result


def _fewer_questions(count: int, wanted: int, not_asked: int) -> str:
    """Why the paper has fewer questions than asked for."""
    why = "the paper's own text answers no more of the question aspects"
    if not_asked:
        why += f"; {not_asked} worded question(s) not asked: the model did not read their "
        why += "sentence as answering them (stats: not_asked)"
    return f"Q&A: {count} of {wanted} questions: {why}"


def summary_problems(text: str, abstract: str, instructions: str) -> list[Problem]:
    """The English summary: one sentence, short, nothing the abstract does not say, and none
    of the task's own `instructions`."""
    problems = []
    if not text:
        return [Problem("empty")]
    echoed = checks.instructions_echoed(text, instructions, abstract)
    if echoed:
        problems.append(Problem("prompt echoed", echoed))
    if len(text.split()) > SUMMARY_WORDS or len(re.findall(r"[.!?](?:\s|$)", text)) > 1:
        problems.append(Problem("longer than one short sentence"))
    invented = checks.details_not_in(text, [abstract])
    if invented:
        problems.append(Problem("numbers or names not in the abstract", ", ".join(invented)))
    if textcheck.japanese_share(text) > 0.3:
        problems.append(Problem("not English"))
    return problems


def _length_problems(pair: SentencePair) -> list[Problem]:
    low, high = SUMMARY_CHARS
    if pair.untranslated or low <= len(pair.text) <= high:
        return []
    return [Problem("summary length", f"{len(pair.text)} characters (want {low}-{high})")]
