"""Wiring for `digest`: the worker the batch runs, and the records a run's digest shows.

Kept apart from generate.py so that a Ray actor can build its own worker from a picklable
factory (functools.partial of module-level functions) without any state from the driver.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localdigest import models
from localdigest.backend import Backend
from localdigest.config import Settings
from localdigest.generate import PaperDigester
from localdigest.record import DigestRecord
from localdigest.store import RecordStore


def model_identity(settings: Settings) -> dict[str, Any]:
    """Name and sha256 of the model `settings.model` names, checked without loading it.

    Raises:
        UsageError: unknown model name. ModelError: the file is missing or not a valid GGUF.
    """
    resolved = models.resolve(settings.model, models.models_dir(settings.models_dir))
    models.check_model_file(resolved.path, resolved.entry)
    return {"name": resolved.name, "sha256": models.sha256_of(resolved.path)}


def _load_backend(settings: Settings, verbose: bool, n_ctx: int) -> Backend:
    from localdigest.backends import load_backend

    return load_backend(settings, n_ctx_hint=n_ctx, verbose=verbose)


def make_digester(
    settings: Settings,
    metadata_file: str | None,
    identity: dict[str, Any],
    verbose: bool = False,
) -> PaperDigester:
    """A worker for the batch; the model is loaded on its first paper, not before."""
    return PaperDigester(
        settings,
        backend_factory=functools.partial(_load_backend, settings, verbose),
        metadata_file=metadata_file,
        model_identity=identity,
    )


def worker_setup(
    settings: Settings, metadata_file: str | None = None, verbose: bool = False
) -> tuple[dict[str, Any], functools.partial[PaperDigester]]:
    """(fingerprint, picklable worker factory) for `batch.run_batch`."""
    identity = model_identity(settings)
    factory = functools.partial(make_digester, settings, metadata_file, identity, verbose)
    return factory().fingerprint(), factory


def records_for(
    paths: Sequence[Path], store: RecordStore, fingerprint: dict[str, Any]
) -> list[DigestRecord]:
    """The store's records for these inputs under this fingerprint, in input order."""
    hashes = store.hash_cache()
    found = []
    try:
        for path in paths:
            try:
                stat = os.stat(path)
            except OSError:
                continue
            sha256 = hashes.get(path, stat) or hashlib.sha256(Path(path).read_bytes()).hexdigest()
            record = store.get(store.key(sha256, fingerprint))
            if record is not None:
                found.append(record)
    finally:
        hashes.close()
    return found
