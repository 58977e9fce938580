"""Running model tasks with checks and retries: the one loop every generation stage shares.

Greedy first (issue 22): every task is decoded at temperature 0, and generated again (another
seed, a rising temperature) only for an objective failure (checks.CHECKS: not Japanese, an
echo, a loop, truncated, another script, an invented word). A retry for a judgement-call check
replaced decent greedy renderings with worse ones that tripped fewer checks, since those checks
do not predict a reader's verdict. Among a task's attempts, `choose` decides (by default the
earliest with the fewest objective failures; translations rank by the model's own score). What
is still wrong stays on the output as its warnings: never hidden, never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localdigest.backend import Backend, CallStats, Completion, GenerationOptions, Message
from localdigest.config import Settings
from localdigest.generate import checks
from localdigest.prompts import PromptSet
from localdigest.record import Problem

Chooser = Callable[[int, list["Attempt"]], "Attempt"]


@dataclass
class Attempt:
    """One checked output of a task: the text kept and what is wrong with it."""

    text: str
    problems: list[Problem] = field(default_factory=list)
    extra: Any = None  # what a stage parsed out of the output besides the text
    # the text's mean log-probability as generated, where it is the whole output unchanged
    log_probability: float | None = None


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
            for problem in attempt.problems:
                if checks.row(problem.kind).objective:
                    reason = f"{stage}: {problem.kind}"
                    self.retry_reasons[reason] = self.retry_reasons.get(reason, 0) + 1

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


@dataclass
class TaskRunner:
    """Runs a stage's independent chats on one backend, retrying the ones that fail their check."""

    backend: Backend
    settings: Settings
    log: StageLog
    on_tokens: Callable[[CallStats], None] | None = None

    def run(
        self,
        stage: str,
        prompts: list[list[Message]],
        check: Callable[[int, Completion], Attempt],
        max_tokens: int,
        *,
        stop: list[str] | None = None,
        retries: int | None = None,
        choose: Chooser | None = None,
        first_repeat_penalty: float | None = None,
    ) -> list[Attempt]:
        """The chosen checked attempt of each prompt (`retries` defaults to the settings';
        `first_repeat_penalty` replaces the default penalty on the first try only)."""
        tried: list[list[Attempt]] = [[] for _ in prompts]
        pending = list(range(len(prompts)))
        rounds = self.settings.retries if retries is None else retries
        for attempt in range(rounds + 1):
            if not pending:
                break
            if attempt:
                self.log.retrying(stage, [tried[i][-1] for i in pending])
            completions = self.backend.chat_many(
                [prompts[i] for i in pending],
                self.options(max_tokens, attempt, stop, None if attempt else first_repeat_penalty),
            )
            for i, completion in zip(pending, completions, strict=True):
                self.log.add(stage, completion.stats)
                if self.on_tokens is not None:
                    self.on_tokens(completion.stats)
                tried[i].append(check(i, completion))
            pending = [i for i in pending if checks.objective_count(tried[i][-1].problems)]
        pick = choose or first_least_failed
        return [pick(i, a) if a else Attempt("", [Problem("empty")]) for i, a in enumerate(tried)]

    def score(self, stage: str, pairs: list[tuple[list[Message], str]]) -> list[float]:
        """The backend's forced-decoding scores of `pairs`, their seconds counted in `stage`."""
        started = time.perf_counter()
        scores = self.backend.score(pairs)
        self.log.add(stage, CallStats(prompt_seconds=time.perf_counter() - started))
        return scores

    def options(
        self,
        max_tokens: int,
        attempt: int,
        stop: list[str] | None = None,
        repeat_penalty: float | None = None,
    ) -> GenerationOptions:
        """The first try is the settings' (greedy by default); retries change the seed and
        raise the temperature to leave a failed output's basin."""
        base = self.settings
        options = GenerationOptions(
            max_tokens=min(max_tokens, base.max_tokens),
            temperature=min(1.0, base.temperature + 0.3 * attempt),
            seed=base.seed + attempt,
            stop=list(stop or []),
        )
        if repeat_penalty is not None:
            options.repeat_penalty = repeat_penalty
        return options


def reading(prompts: PromptSet, template: str, **values: Any) -> list[Message]:
    """An English reading task (summary, choice, check, question): the reader's system message
    and the task `template` rendered with `values`."""
    return [
        Message("system", prompts.render("reader_system.j2")),
        Message("user", prompts.render(template, **values)),
    ]


def first_paragraph(text: str) -> str:
    """The reply up to its first blank line, on one line: a small model sometimes adds notes."""
    return " ".join(text.strip().split("\n\n")[0].split())


def first_least_failed(_: int, attempts: list[Attempt]) -> Attempt:
    """The earliest attempt with the fewest objective failures: greedy unless it failed."""
    return min(attempts, key=lambda a: checks.objective_count(a.problems))
