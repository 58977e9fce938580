"""Running model tasks with checks and retries: the one loop every generation stage shares.

Each stage hands in its prompts and a check; a task whose output fails its check is run again
with another seed and a higher temperature, and the least defective output is kept. What is
still wrong after the retries stays on the output as its warnings: never hidden, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localdigest.backend import Backend, CallStats, Completion, GenerationOptions, Message
from localdigest.config import Settings

# Problems that leave an output useless to a Japanese reader; when the best attempt is kept,
# one of them outweighs several lesser ones (a Japanese sentence with a clumsy term beats English).
SEVERE = (
    "empty",
    "not Japanese",
    "English copied",
    "Chinese",
    "Cyrillic or Hangul",
    "prompt echoed",
    "repeats itself",
)


def is_severe(problem: str) -> bool:
    return any(word in problem for word in SEVERE)


def severity(problems: list[str]) -> int:
    return sum(3 if is_severe(p) else 1 for p in problems)


@dataclass
class Attempt:
    """One checked output of a task: the text kept and what is wrong with it."""

    text: str
    problems: list[str] = field(default_factory=list)
    extra: Any = None  # what a stage parsed out of the output besides the text


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
        first_round: int = 0,
    ) -> list[Attempt]:
        """The best checked attempt of each prompt (`retries` defaults to the settings').

        `first_round` > 0 starts with a retry's seed and temperature: for outputs that passed
        their checks but were found wrong later, so that their first try is not repeated."""
        best: list[Attempt | None] = [None] * len(prompts)
        pending = list(range(len(prompts)))
        rounds = self.settings.retries if retries is None else retries
        for attempt in range(first_round, max(rounds, first_round) + 1):
            if not pending:
                break
            if attempt > first_round:
                self.log.retrying(stage, [a for i in pending if (a := best[i]) is not None])
            completions = self.backend.chat_many(
                [prompts[i] for i in pending], self.options(max_tokens, attempt, stop)
            )
            for i, completion in zip(pending, completions, strict=True):
                self.log.add(stage, completion.stats)
                if self.on_tokens is not None:
                    self.on_tokens(completion.stats)
                current = check(i, completion)
                previous = best[i]
                if previous is None or severity(current.problems) < severity(previous.problems):
                    best[i] = current
            pending = [i for i, a in enumerate(best) if a is None or a.problems]
        return [a if a is not None else Attempt("", ["empty output"]) for a in best]

    def options(
        self, max_tokens: int, attempt: int, stop: list[str] | None = None
    ) -> GenerationOptions:
        """Retries change the seed and raise the temperature to leave a bad output's basin."""
        base = self.settings
        return GenerationOptions(
            max_tokens=min(max_tokens, base.max_tokens),
            temperature=min(1.0, base.temperature + 0.3 * attempt),
            seed=base.seed + attempt,
            stop=list(stop or []),
        )
