"""What an executor moves between the batch driver and a worker: tasks in, outcomes out.

The worker interface (`Worker`, built by a picklable `WorkerFactory`) is defined here, beside
the tasks it is given, because executors are what run workers; the batch driver hands them a
factory and `localdigest.pipeline.DigestWorker` is the real implementation. Nothing here
touches the record store: the driver alone claims, writes and releases.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from localdigest import errors
from localdigest.errors import LocaldigestError, PDFError, UsageError, WorkerError
from localdigest.keys import canonical_json
from localdigest.record import DigestRecord

if TYPE_CHECKING:
    from localdigest.generate.digester import StageCallback

log = logging.getLogger("localdigest")

EXTRACT_STAGE = "extract"  # a time-out here is the PDF's doing: the same bytes would hang again
DEATHS_PER_PAPER = 2  # a paper whose worker died this often is recorded as failed


@runtime_checkable
class Worker(Protocol):
    """Turns one PDF into a DigestRecord. `localdigest.pipeline.DigestWorker` is the real one."""

    def fingerprint(self) -> dict[str, Any]:
        """What determines a record besides the PDF: model sha256, prompt version, options."""
        ...

    def process(
        self, name: str, data: bytes, on_stage: StageCallback | None = None
    ) -> DigestRecord:
        """Digest one PDF given as bytes; raises LocaldigestError subclasses on failure.

        `on_stage(stage, detail)` may be called as work proceeds, e.g. ("generate",
        {"tokens_per_second": 14.2}); `detail` is plain JSON data.
        """
        ...


# Picklable (worker processes and Ray actors call it to build their own worker), called only
# when there is work.
WorkerFactory = Callable[[], Worker]


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
    on_stage: StageCallback | None = None,
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
