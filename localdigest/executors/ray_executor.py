"""Run a batch on Ray (optional extra `localdigest[ray]`): one long-lived actor per worker.

Each actor builds its own worker from the picklable factory once (so the model loads once per
actor), PDFs travel to it as bytes and records come back to the driver, which alone writes the
store: the cluster needs no shared filesystem. Without an address a local cluster is started.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Iterator
from typing import Any

from localdigest.errors import UsageError
from localdigest.executors.work import (
    DeathCount,
    Outcome,
    Task,
    TaskStageCallback,
    WorkerFactory,
    check_fingerprint,
    run_task,
    start_error,
    timed_out,
)

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


class RayExecutor:
    """Papers spread over `num_workers` Ray actors, one paper in flight per actor.

    An actor that dies (out of memory, node lost) or runs past `paper_timeout` is killed and
    replaced by a new one; the paper it held is tried once more, then recorded as failed.
    Actors that keep dying whatever they are given stop the batch (WorkerError).

    Args:
        paper_timeout: seconds one paper may take; None: no limit.
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
        paper_timeout: float | None = None,
        address: str | None = None,
        num_workers: int | None = None,
        gpus_per_worker: float = 0.0,
        cpus_per_worker: float = 1.0,
    ) -> None:
        if importlib.util.find_spec("ray") is None:  # fail now, not after the skips
            raise UsageError(_MISSING)
        self.worker_factory = worker_factory
        self.fingerprint = fingerprint
        self.paper_timeout = paper_timeout
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
        actors = _Actors(ray, self)
        try:
            actors.start(self._worker_count(ray))
            log.info("ray: %d worker(s) on %s", actors.count, self.address or "a local cluster")
            yield from self._dispatch(ray, actors, first, tasks)
        finally:
            actors.kill_all()
            if started_here:
                ray.shutdown()

    def _dispatch(
        self, ray: Any, actors: _Actors, first: Task, tasks: Iterator[Task]
    ) -> Iterator[tuple[Task, Outcome]]:
        deaths = DeathCount(actors.count)
        idle = list(actors.live)
        pending: dict[Any, tuple[Task, Any, float]] = {}  # ref -> (task, actor, started)
        retry: list[Task] = []
        upcoming: Task | None = first
        while True:
            while idle and (retry or upcoming is not None):
                if retry:
                    task = retry.pop()
                else:
                    assert upcoming is not None
                    task, upcoming = upcoming, next(tasks, None)
                actor = idle.pop()
                ref = actor.process.remote(task.name, task.data)
                pending[ref] = (task, actor, time.perf_counter())
            if not pending:
                yield from deaths.settle()
                return
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=self._wait(pending))
            now = time.perf_counter()
            if not ready and self.paper_timeout is not None:
                ready = [r for r, (_, _, t) in pending.items() if now - t >= self.paper_timeout]
                for ref in ready:
                    task, actor, started = pending.pop(ref)
                    idle.append(actors.replace(actor))
                    yield from deaths.came_back(task)
                    yield task, timed_out(self.paper_timeout, None, now - started)
                continue
            for ref in ready:
                task, actor, started = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the actor died (OOM, node lost)
                    idle.append(actors.replace(actor))
                    if deaths.died(task, type(exc).__name__, now - started):
                        retry.append(task)
                    continue
                idle.append(actor)
                yield from deaths.came_back(task)
                yield task, outcome

    def _wait(self, pending: dict[Any, tuple[Task, Any, float]]) -> float | None:
        """Seconds until the earliest paper in flight reaches its time limit (None: no limit)."""
        if self.paper_timeout is None:
            return None
        oldest = min(started for _, _, started in pending.values())
        return max(0.0, oldest + self.paper_timeout - time.perf_counter())


class _Actors:
    """The live actors of a batch: started, checked, replaced when one dies, killed at the end."""

    def __init__(self, ray: Any, executor: RayExecutor) -> None:
        self.ray = ray
        self.executor = executor
        # No automatic restarts: a dead actor is replaced here, where deaths are counted.
        self.actor_class = ray.remote(DigestActor).options(
            num_cpus=executor.cpus_per_worker, num_gpus=executor.gpus_per_worker, max_restarts=0
        )
        self.live: list[Any] = []
        self.count = 0

    def start(self, count: int) -> None:
        self.count = count
        self._add(count)

    def replace(self, actor: Any) -> Any:
        """Kill `actor` (dead, or stuck past its paper's time limit) and start its successor."""
        self.live.remove(actor)
        self.ray.kill(actor, no_restart=True)
        return self._add(1)[0]

    def _add(self, count: int) -> list[Any]:
        new = [self.actor_class.remote(self.executor.worker_factory) for _ in range(count)]
        self.live.extend(new)
        for found in self.ray.get([a.fingerprint.remote() for a in new]):
            if isinstance(found, (tuple, list)):
                name, message = found
                raise start_error(name, message, "ray worker")
            check_fingerprint(found, self.executor.fingerprint)
        return new

    def kill_all(self) -> None:
        for actor in self.live:
            self.ray.kill(actor, no_restart=True)
        self.live = []
