"""Where papers are processed: in a child process of this one (`local`) or on Ray (`ray`).

An executor turns a stream of `Task`s (PDF bytes plus the key they will be stored under) into a
stream of `(Task, Outcome)`s. It never touches the store: the batch driver claims, writes and
releases, so remote workers need no shared filesystem. Tasks are pulled only when a worker is
free, and the worker (the model) is built only when the first task arrives, so a re-run that
skips everything never loads a model.

Workers run in other processes so that the driver can always stop them: a paper past its time
limit, a crash in a PDF parser and Ctrl-C during a long llama.cpp call all end with the worker
process killed and the driver still in charge of the store and its claims.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from localdigest import errors
from localdigest.errors import LocaldigestError, PDFError, UsageError, WorkerError
from localdigest.record import DigestRecord

if TYPE_CHECKING:
    from localdigest.batch import Worker, WorkerFactory

log = logging.getLogger("localdigest")

EXECUTORS = ("local", "ray")
EXTRACT_STAGE = "extract"  # a time-out here is the PDF's doing: the same bytes would hang again
DEATHS_PER_PAPER = 2  # a paper whose worker died this often is recorded as failed

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


def timed_out(limit: float, stage: str | None, seconds: float) -> Outcome:
    """The outcome of a paper stopped at its time limit (`--paper-timeout`)."""
    where = f" in {stage}" if stage else ""
    return Outcome(
        None,
        f"timed out after {limit:g} s{where} (--paper-timeout)",
        "PaperTimeout",
        permanent=stage == EXTRACT_STAGE,
        seconds=seconds,
    )


def worker_died(how: str, seconds: float) -> Outcome:
    """The outcome of a paper whose worker died under it `DEATHS_PER_PAPER` times."""
    return Outcome(
        None,
        f"the worker died {DEATHS_PER_PAPER} times while processing this paper ({how})",
        "WorkerDied",
        seconds=seconds,
    )


class DeathCount:
    """Deaths of worker processes, per paper and in a row.

    One lost process costs a retry of its paper; a paper that kills its worker again is a
    suspect: it is recorded as failed once another paper has come back from a worker (the
    workers are fine, the paper kills them), or at the end. Workers that keep dying whatever
    they are given (no paper comes back between the deaths) stop the batch with WorkerError,
    the suspects unrecorded: a broken machine does not turn the archive into error records.
    """

    def __init__(self, workers: int) -> None:
        self.limit = DEATHS_PER_PAPER * (workers + 2)
        self.in_a_row = 0
        self.per_task: dict[str, int] = {}
        self.suspects: list[tuple[Task, Outcome]] = []

    def died(self, task: Task, how: str, seconds: float) -> bool:
        """Count a death under `task`; True if the task should be tried again on a new worker,
        False if it is now a suspect.

        Raises:
            WorkerError: too many deaths without a paper coming back in between.
        """
        self.in_a_row += 1
        if self.in_a_row >= self.limit:
            raise WorkerError(
                f"worker processes died {self.in_a_row} times in a row, last {how}: batch "
                "stopped; the records written so far are kept, run the same command again"
            )
        log.warning("%s: the worker died (%s); starting a new one", task.name, how)
        deaths = self.per_task.get(task.key, 0) + 1
        if deaths < DEATHS_PER_PAPER:
            self.per_task[task.key] = deaths
            return True
        self.per_task.pop(task.key, None)
        self.suspects.append((task, worker_died(how, seconds)))
        return False

    def came_back(self, task: Task) -> list[tuple[Task, Outcome]]:
        """A worker finished `task` (whatever its outcome): the suspects, now to be recorded."""
        self.in_a_row = 0
        self.per_task.pop(task.key, None)
        return self.settle()

    def settle(self) -> list[tuple[Task, Outcome]]:
        suspects, self.suspects = self.suspects, []
        return suspects


def check_fingerprint(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """The worker must produce what the keys promise, or records would be filed wrongly."""
    from localdigest.store import canonical_json

    if canonical_json(actual) != canonical_json(expected):
        raise UsageError(
            "the worker's fingerprint differs from the one the batch computed "
            f"(worker {canonical_json(actual)}, batch {canonical_json(expected)}): "
            "the model or prompts changed while starting; run again"
        )


def start_error(name: str, message: str, where: str) -> LocaldigestError:
    """Rebuild a worker's start failure (ModelError, ...) as the driver-side typed error."""
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, LocaldigestError) and cls is not errors.PDFError:
        return cls(f"{where} could not start: {message}")
    return LocaldigestError(f"{where} could not start: {name}: {message}")


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
        from localdigest.executors.isolated import WorkerDied, WorkerProcess

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


def make_executor(
    name: str,
    worker_factory: WorkerFactory,
    fingerprint: dict[str, Any],
    *,
    paper_timeout: float | None = None,
    ray_address: str | None = None,
    num_workers: int | None = None,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
) -> Executor:
    """The executor called `name` ("local" or "ray"). Raises UsageError for an unknown name.

    `paper_timeout`: seconds one paper may take before its worker is killed (None: no limit).
    """
    if name == "local":
        if ray_address or (num_workers not in (None, 1)):
            raise UsageError("--ray-address and --workers need --executor ray")
        return LocalExecutor(worker_factory, fingerprint, paper_timeout)
    if name == "ray":
        from localdigest.executors.ray_executor import RayExecutor

        return RayExecutor(
            worker_factory,
            fingerprint,
            paper_timeout=paper_timeout,
            address=ray_address,
            num_workers=num_workers,
            gpus_per_worker=gpus_per_worker,
            cpus_per_worker=cpus_per_worker,
        )
    raise UsageError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")
