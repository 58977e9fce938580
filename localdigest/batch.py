"""Archive reprocessing: run many PDFs through a worker into the record store, resumably.

For each input the driver hashes the bytes (or finds the hash in the store's cache by path, size
and mtime, so a re-run of a large archive reads nothing it has already done) and skips the paper
when the store holds its record; no model is loaded for a run that skips everything. Otherwise it
claims the key, hands the bytes to an executor, writes what comes back atomically and releases
the claim. A failing paper becomes an error record and the batch goes on; a paper past its time
limit has its worker killed and is recorded as timed out. A failed redo (`force`) keeps the good
record it was redoing (the store files the failure beside it). Ctrl-C stops within moments at
any stage (workers run in other processes and are killed), keeping the papers already written
and releasing claims. Killing the process at any moment loses at most the papers in flight:
their claims are recovered as stale and the next run redoes them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localdigest import progress as events
from localdigest.arxiv import arxiv_id_from_name
from localdigest.executors import make_executor
from localdigest.executors.work import Outcome, Task, WorkerFactory
from localdigest.paper import PaperMetadata
from localdigest.progress import ProgressEvent, format_duration
from localdigest.record import STATUS_ERROR, DigestRecord
from localdigest.store import RecordStore, is_permanent_error, needs_work

log = logging.getLogger("localdigest")

ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class Failure:
    path: str
    reason: str
    earlier: bool = False  # a permanent error recorded by an earlier run, not retried


@dataclass
class BatchSummary:
    """The end of a batch. `exit_code`: 0 all succeeded, 1 some failed, 130 interrupted."""

    total: int = 0
    done: int = 0  # processed successfully by this run
    skipped: int = 0  # already had a valid record
    failed: int = 0  # failed in this run, or permanently failed earlier (see Failure.earlier)
    busy: int = 0  # being processed by another process on the same store
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def papers_per_hour(self) -> float:
        """Throughput of the papers actually processed (skips are free and do not count)."""
        processed = self.done + sum(1 for f in self.failures if not f.earlier)
        return processed / self.seconds * 3600 if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "busy": self.busy,
            "failures": [vars(f) for f in self.failures],
            "seconds": round(self.seconds, 3),
            "papers_per_hour": round(self.papers_per_hour, 2),
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        """The end-of-batch report for people: counts, time, throughput, then each failure."""
        head = (
            f"{self.total} papers: {self.done} done, {self.skipped} skipped, {self.failed} failed"
            + (f", {self.busy} busy in another process" if self.busy else "")
            + f" in {format_duration(self.seconds)} ({self.papers_per_hour:.1f} papers/hour)"
            + (" - interrupted, run again to finish" if self.interrupted else "")
        )
        lines = [head]
        for f in self.failures:
            lines.append(
                f"  failed: {f.path}: {f.reason}" + (" (earlier run)" if f.earlier else "")
            )
        return "\n".join(lines)


class _Tracker:
    """Counts and ETA while the batch runs; emits progress events."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.summary = BatchSummary(total=total)
        self.callback = callback
        self.start = time.monotonic()
        self.seen = 0  # inputs examined
        self.queued = 0  # inputs that needed work
        self.finished = 0  # outcomes received
        self.first_work: float | None = None

    def eta(self) -> float | None:
        if not self.finished or self.first_work is None or not self.seen:
            return None
        rate = self.finished / max(time.monotonic() - self.first_work, 1e-9)
        remaining = (self.queued - self.finished) + (
            (self.summary.total - self.seen) * self.queued / self.seen
        )
        return remaining / rate

    def emit(self, index: int, path: str, stage: str, detail: dict[str, Any] | None = None) -> None:
        if self.callback is None:
            return
        detail = detail or {}
        tps = detail.get("tokens_per_second")
        s = self.summary
        self.callback(
            ProgressEvent(
                index=index,
                total=s.total,
                path=path,
                stage=stage,
                done=s.done,
                skipped=s.skipped,
                failed=s.failed,
                elapsed_seconds=round(time.monotonic() - self.start, 3),
                eta_seconds=None if (eta := self.eta()) is None else round(eta, 1),
                tokens_per_second=float(tps) if isinstance(tps, (int, float)) else None,
                detail=detail,
            )
        )

    def fail(self, index: int, path: str, reason: str, *, earlier: bool = False) -> None:
        self.summary.failed += 1
        self.summary.failures.append(Failure(path, reason, earlier))
        self.emit(index, path, events.FAILED, {"reason": reason, "earlier": earlier})


def run_batch(
    paths: Sequence[Path],
    store: RecordStore,
    worker_factory: WorkerFactory,
    *,
    fingerprint: dict[str, Any],
    executor: str = "local",
    force: bool = False,
    paper_timeout: float | None = None,
    progress: ProgressCallback | None = None,
    ray_address: str | None = None,
    num_workers: int | None = None,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
) -> BatchSummary:
    """Process `paths` into `store`, skipping papers whose record exists; never stops on one paper.

    Args:
        paths: the PDFs, in order (see localdigest.inputs).
        store: where records go; also coordinates concurrent processes through claims.
        worker_factory: builds the worker, only once there is a paper to process.
        fingerprint: the worker's fingerprint, known without building it (keys depend on it);
            the worker's own fingerprint is checked against it when it starts.
        executor: "local" (this process) or "ray".
        force: redo papers that already have a record (a failed redo keeps the old record).
        paper_timeout: seconds one paper may take before its worker is killed and the paper
            recorded as timed out; None: no limit.
        progress: receives a ProgressEvent per stage of each paper, and a final "finished".
        ray_address, num_workers, gpus_per_worker, cpus_per_worker: for the ray executor.

    Returns:
        Counts, failures and timing; `interrupted` when Ctrl-C stopped it.

    Raises:
        StoreError: the store cannot be written (nothing sensible can continue).
        UsageError, ModelError: the executor or the worker could not start.
        WorkerError: workers kept dying; the records written so far are kept.
    """
    tracker = _Tracker(len(paths), progress)
    run = make_executor(
        executor,
        worker_factory,
        fingerprint,
        paper_timeout=paper_timeout,
        ray_address=ray_address,
        num_workers=num_workers,
        gpus_per_worker=gpus_per_worker,
        cpus_per_worker=cpus_per_worker,
    )
    queue = _Queue(store, fingerprint, force, tracker)
    swept = store.temp_files.sweep()
    if swept:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", store.root, swept)
    if stale := store.claims.sweep():
        log.info("%s: removed %d claim(s) left by an interrupted run", store.root, stale)

    def on_stage(task: Task, stage: str, detail: dict[str, Any]) -> None:
        tracker.emit(task.index, task.name, stage, detail)

    results = run.run(queue.tasks(paths), on_stage)
    try:
        with store.claims.keep_alive():
            for task, outcome in results:
                try:
                    _save(store, task, outcome, fingerprint, tracker)
                finally:
                    store.claims.release(task.key)
    except KeyboardInterrupt:
        tracker.summary.interrupted = True
        log.warning("interrupted: records written so far are kept; run again to finish")
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
        store.claims.release_all()
        queue.hashes.close()
        tracker.summary.seconds = time.monotonic() - tracker.start
    tracker.emit(len(paths), "", events.FINISHED, tracker.summary.to_dict())
    return tracker.summary


class _Queue:
    """The batch's inputs as tasks: each paper hashed, looked up and claimed before it is
    handed to the executor, which pulls the next one only when a worker is free."""

    def __init__(
        self, store: RecordStore, fingerprint: dict[str, Any], force: bool, tracker: _Tracker
    ) -> None:
        self.store = store
        self.fingerprint = fingerprint
        self.force = force
        self.tracker = tracker
        self.started_at = time.time()
        self.hashes = store.hash_cache()

    def tasks(self, paths: Sequence[Path]) -> Iterator[Task]:
        tracker = self.tracker
        for index, path in enumerate(paths, 1):
            tracker.seen = index
            task = self._claimed(index, path)
            if task is None:
                continue
            tracker.queued += 1
            if tracker.first_work is None:
                tracker.first_work = time.monotonic()
            tracker.emit(index, task.name, events.STARTED)
            yield task

    def _claimed(self, index: int, path: Path) -> Task | None:
        """The paper as a claimed task, or None when it needs no work here (counted as such)."""
        name, store, tracker = str(path), self.store, self.tracker
        try:
            sha256, data = self.hashes.file_sha256(path)
        except OSError as exc:
            tracker.fail(index, name, f"cannot read file: {exc.strerror or exc}")
            return None
        key = store.key(sha256, self.fingerprint)
        if self._settled(key, index, name):
            return None
        if not store.claims.claim(key):
            tracker.summary.busy += 1
            tracker.emit(index, name, events.BUSY)
            return None
        # Another process may have finished it between our look and our claim.
        if self._settled(key, index, name):
            store.claims.release(key)
            return None
        if data is None:  # known from the hash cache: read it now, once
            data = self._read_unchanged(index, path, key, sha256)
            if data is None:
                return None
        return Task(index, key, name, sha256, data)

    def _read_unchanged(self, index: int, path: Path, key: str, sha256: str) -> bytes | None:
        """The bytes the cached hash promised; None (claim released, failure counted) if the
        file cannot be read or has changed since it was hashed."""
        name = str(path)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            self.store.claims.release(key)
            self.tracker.fail(index, name, f"cannot read file: {exc.strerror or exc}")
            return None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            self.store.claims.release(key)
            self.hashes.put(path, os.stat(path), actual)
            self.tracker.fail(index, name, "file changed while the batch ran: run again")
            return None
        return data

    def _settled(self, key: str, index: int, name: str) -> bool:
        """Whether the paper needs no work now; counts it as skipped or (earlier) failed if so."""
        existing = self.store.get(key)
        if existing is None:
            return False
        if self.force:
            # --force redoes records from before this run, not ones a concurrent run just wrote.
            try:
                fresh = self.store.path_for(key).stat().st_mtime >= self.started_at
            except FileNotFoundError:
                return False
            if not fresh:
                return False
        elif needs_work(existing):
            return False
        if is_permanent_error(existing):
            self.tracker.fail(index, name, existing.error or "failed", earlier=True)
        else:
            self.tracker.summary.skipped += 1
            self.tracker.emit(index, name, events.SKIPPED)
        return True


def _save(
    store: RecordStore, task: Task, outcome: Outcome, fingerprint: dict[str, Any], tracker: _Tracker
) -> None:
    tracker.finished += 1
    record = outcome.record
    if record is not None and record.status != STATUS_ERROR:
        record.source_sha256 = task.sha256  # the key was made from these bytes
        store.put(task.key, record)
        tracker.summary.done += 1
        tracker.emit(task.index, task.name, events.DONE, {"seconds": round(outcome.seconds, 3)})
        return
    reason = (record.error if record is not None else outcome.error) or "failed"
    store.put(task.key, error_record(task, outcome, reason, fingerprint))
    tracker.fail(task.index, task.name, reason)


def error_record(
    task: Task, outcome: Outcome, reason: str, fingerprint: dict[str, Any]
) -> DigestRecord:
    """The record of a failure: why, and whether retrying the same bytes could help."""
    found = arxiv_id_from_name(task.name)
    metadata = (
        PaperMetadata(arxiv_id=found[0], arxiv_version=found[1]) if found else PaperMetadata()
    )
    return DigestRecord(
        source_path=task.name,
        source_sha256=task.sha256,
        metadata=metadata,
        status=STATUS_ERROR,
        error=reason,
        provenance={
            "fingerprint": fingerprint,
            "error_type": outcome.error_type,
            "error_permanent": outcome.permanent,
            "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        },
        stats={"seconds": round(outcome.seconds, 3)},
    )
