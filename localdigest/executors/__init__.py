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

from typing import Any

from localdigest.executors.work import Executor, WorkerFactory


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
    """The executor called `name`: "ray", else "local" (the `executor` setting; config.py
    checks it, and that the Ray options come with "ray").

    `paper_timeout`: seconds one paper may take before its worker is killed (None: no limit).
    """
    if name != "ray":
        from localdigest.executors.local import LocalExecutor

        return LocalExecutor(worker_factory, fingerprint, paper_timeout)
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
