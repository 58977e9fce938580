"""Where papers are processed: in this process (`local`) or on a Ray cluster (`ray`).

An executor turns a stream of `Task`s (PDF bytes plus the key they will be stored under) into a
stream of `(Task, Outcome)`s. It never touches the store: the batch driver claims, writes and
releases, so remote workers need no shared filesystem. Tasks are pulled only when a worker is
free, and the worker (the model) is built only when the first task arrives, so a re-run that
skips everything never loads a model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from localdigest.errors import LocaldigestError, PDFError, UsageError
from localdigest.record import DigestRecord

if TYPE_CHECKING:
    from localdigest.batch import Worker, WorkerFactory

log = logging.getLogger("localdigest")

EXECUTORS = ("local", "ray")

# (task, stage, detail): a worker's per-stage report, routed to the batch's progress events.
TaskStageCallback = Callable[["Task", str, dict[str, Any]], None]


@dataclass
class Task:
    index: int  # 1-based position among the batch inputs
    key: str
    name: str  # the path as given: shown in messages, stored as the record's source_path
    sha256: str
    data: bytes


@dataclass
class Outcome:
    """What became of one task: a record, or why there is none."""

    record: DigestRecord | None
    error: str | None = None
    error_type: str | None = None
    permanent: bool = False  # the same input will fail the same way: do not retry by default
    seconds: float = 0.0


class Executor(Protocol):
    def run(
        self, tasks: Iterator[Task], on_stage: TaskStageCallback
    ) -> Iterator[tuple[Task, Outcome]]:
        """Process tasks as workers become free; yield each task with its outcome."""
        ...


def run_task(
    worker: Worker,
    name: str,
    data: bytes,
    on_stage: Callable[[str, dict[str, Any]], None] | None = None,
) -> Outcome:
    """Run one paper through a worker; any failure becomes an Outcome, never an exception.

    KeyboardInterrupt is not caught: Ctrl-C must stop the batch.
    """
    start = time.perf_counter()
    try:
        record = worker.process(name, data, on_stage=on_stage)
    except PDFError as exc:
        return Outcome(None, exc.reason, "PDFError", True, time.perf_counter() - start)
    except LocaldigestError as exc:
        return Outcome(None, str(exc), type(exc).__name__, False, time.perf_counter() - start)
    except Exception as exc:  # a bug in one paper's path must not end an archive run
        log.debug("%s: unexpected error", name, exc_info=True)
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return Outcome(None, reason, type(exc).__name__, False, time.perf_counter() - start)
    return Outcome(record, seconds=time.perf_counter() - start)


def check_fingerprint(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """The worker must produce what the keys promise, or records would be filed wrongly."""
    from localdigest.store import canonical_json

    if canonical_json(actual) != canonical_json(expected):
        raise UsageError(
            "the worker's fingerprint differs from the one the batch computed "
            f"(worker {canonical_json(actual)}, batch {canonical_json(expected)}): "
            "the model or prompts changed while starting; run again"
        )


class LocalExecutor:
    """One worker in this process, papers one after another."""

    def __init__(self, worker_factory: WorkerFactory, fingerprint: dict[str, Any]) -> None:
        self.worker_factory = worker_factory
        self.fingerprint = fingerprint

    def run(
        self, tasks: Iterator[Task], on_stage: TaskStageCallback
    ) -> Iterator[tuple[Task, Outcome]]:
        worker: Worker | None = None
        for task in tasks:
            if worker is None:
                worker = self.worker_factory()
                check_fingerprint(worker.fingerprint(), self.fingerprint)

            def report(stage: str, detail: dict[str, Any], task: Task = task) -> None:
                on_stage(task, stage, detail)

            yield task, run_task(worker, task.name, task.data, report)


def make_executor(
    name: str,
    worker_factory: WorkerFactory,
    fingerprint: dict[str, Any],
    *,
    ray_address: str | None = None,
    num_workers: int | None = None,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
) -> Executor:
    """The executor called `name` ("local" or "ray"). Raises UsageError for an unknown name."""
    if name == "local":
        if ray_address or (num_workers not in (None, 1)):
            raise UsageError("--ray-address and --workers need --executor ray")
        return LocalExecutor(worker_factory, fingerprint)
    if name == "ray":
        from localdigest.executors.ray_executor import RayExecutor

        return RayExecutor(
            worker_factory,
            fingerprint,
            address=ray_address,
            num_workers=num_workers,
            gpus_per_worker=gpus_per_worker,
            cpus_per_worker=cpus_per_worker,
        )
    raise UsageError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")
