"""Run a batch on Ray (optional extra `localdigest[ray]`): one long-lived actor per worker.

Each actor builds its own worker from the picklable factory once (so the model loads once per
actor), PDFs travel to it as bytes and records come back to the driver, which alone writes the
store: the cluster needs no shared filesystem. Without an address a local cluster is started.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from localdigest import errors
from localdigest.errors import LocaldigestError, UsageError
from localdigest.executors import Outcome, Task, TaskStageCallback, check_fingerprint, run_task

if TYPE_CHECKING:
    from localdigest.batch import WorkerFactory

log = logging.getLogger("localdigest")


_MISSING = "--executor ray needs Ray: pip install 'localdigest[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(_MISSING) from None
    return ray


class DigestActor:
    """The body of a Ray actor: holds one worker (one loaded model) for its whole life."""

    def __init__(self, worker_factory: WorkerFactory) -> None:
        self.worker = None
        self.start_error: tuple[str, str] | None = None
        try:
            self.worker = worker_factory()
        except Exception as exc:  # reported to the driver, which raises it as a typed error
            self.start_error = (type(exc).__name__, str(exc))

    def fingerprint(self) -> dict[str, Any] | tuple[str, str]:
        if self.worker is None:
            assert self.start_error is not None
            return self.start_error
        return self.worker.fingerprint()

    def process(self, name: str, data: bytes) -> Outcome:
        assert self.worker is not None
        return run_task(self.worker, name, data)


def _start_error(name: str, message: str) -> LocaldigestError:
    """Rebuild the worker's start failure (ModelError, ...) as the driver-side typed error."""
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, LocaldigestError) and cls is not errors.PDFError:
        return cls(f"ray worker could not start: {message}")
    return LocaldigestError(f"ray worker could not start: {name}: {message}")


class RayExecutor:
    """Papers spread over `num_workers` Ray actors, one paper in flight per actor.

    Args:
        address: a cluster address (`ray://host:10001`, `auto`); None starts a local cluster
            unless Ray is already initialised in this process.
        num_workers: actors to start; None: as many as the cluster's GPUs (or CPUs) allow.
        gpus_per_worker: GPUs each actor requests (its model runs there).
        cpus_per_worker: CPUs each actor requests.
    """

    def __init__(
        self,
        worker_factory: WorkerFactory,
        fingerprint: dict[str, Any],
        *,
        address: str | None = None,
        num_workers: int | None = None,
        gpus_per_worker: float = 0.0,
        cpus_per_worker: float = 1.0,
    ) -> None:
        if importlib.util.find_spec("ray") is None:  # fail now, not after the skips
            raise UsageError(_MISSING)
        if num_workers is not None and num_workers < 1:
            raise UsageError("--workers must be at least 1")
        self.worker_factory = worker_factory
        self.fingerprint = fingerprint
        self.address = address
        self.num_workers = num_workers
        self.gpus_per_worker = gpus_per_worker
        self.cpus_per_worker = cpus_per_worker

    def _worker_count(self, ray: Any) -> int:
        if self.num_workers:
            return self.num_workers
        resources = ray.cluster_resources()
        if self.gpus_per_worker > 0:
            return max(1, int(resources.get("GPU", 0) // self.gpus_per_worker))
        return max(1, int(resources.get("CPU", 1) // max(self.cpus_per_worker, 0.001)))

    def run(
        self, tasks: Iterator[Task], on_stage: TaskStageCallback
    ) -> Iterator[tuple[Task, Outcome]]:
        first = next(tasks, None)
        if first is None:  # nothing to do: do not even start Ray
            return
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
        actors: list[Any] = []
        try:
            actor_class = ray.remote(DigestActor).options(
                num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker, max_restarts=1
            )
            actors = [
                actor_class.remote(self.worker_factory) for _ in range(self._worker_count(ray))
            ]
            for found in ray.get([a.fingerprint.remote() for a in actors]):
                if isinstance(found, (tuple, list)):
                    raise _start_error(*found)
                check_fingerprint(found, self.fingerprint)
            log.info("ray: %d worker(s) on %s", len(actors), self.address or "a local cluster")
            yield from self._dispatch(ray, actors, first, tasks)
        finally:
            for actor in actors:
                ray.kill(actor)
            if started_here:
                ray.shutdown()

    def _dispatch(
        self, ray: Any, actors: list[Any], first: Task, tasks: Iterator[Task]
    ) -> Iterator[tuple[Task, Outcome]]:
        idle = list(actors)
        pending: dict[Any, tuple[Task, Any]] = {}
        upcoming: Task | None = first
        while True:
            while idle and upcoming is not None:
                actor = idle.pop()
                pending[actor.process.remote(upcoming.name, upcoming.data)] = (upcoming, actor)
                upcoming = next(tasks, None)
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task, actor = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # actor died (OOM, node lost): retry later
                    outcome = Outcome(None, f"ray worker failed: {exc}", type(exc).__name__)
                idle.append(actor)
                yield task, outcome
