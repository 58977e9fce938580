"""The `local` executor: one worker in a child process of this one, papers one after another."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from localdigest.executors.isolated import WorkerDied, WorkerProcess
from localdigest.executors.work import (
    DeathCount,
    Outcome,
    Task,
    TaskStageCallback,
    WorkerFactory,
)


class LocalExecutor:
    """One worker in a child process, papers one after another."""

    def __init__(
        self,
        worker_factory: WorkerFactory,
        fingerprint: dict[str, Any],
        paper_timeout: float | None = None,
    ) -> None:
        self.worker_factory = worker_factory
        self.fingerprint = fingerprint
        self.paper_timeout = paper_timeout

    def run(
        self, tasks: Iterator[Task], on_stage: TaskStageCallback
    ) -> Iterator[tuple[Task, Outcome]]:
        worker = WorkerProcess(self.worker_factory, self.fingerprint)
        deaths = DeathCount(workers=1)
        try:
            for task in tasks:

                def report(stage: str, detail: dict[str, Any], task: Task = task) -> None:
                    on_stage(task, stage, detail)

                started = time.perf_counter()
                while True:
                    try:
                        outcome = worker.process(task, report, self.paper_timeout)
                    except WorkerDied as exc:
                        if deaths.died(task, exc.how, time.perf_counter() - started):
                            continue
                    else:
                        yield from deaths.came_back(task)
                        yield task, outcome
                    break
            yield from deaths.settle()
        finally:
            worker.stop()
