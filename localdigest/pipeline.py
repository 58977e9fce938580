"""Wiring for `digest`: the worker the batch runs, and the records a run's digest shows.

Kept apart from generate.py so that a Ray actor can build its own worker from a picklable
factory (functools.partial of module-level functions) without any state from the driver.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from localdigest import models
from localdigest.backend import Backend
from localdigest.config import Settings
from localdigest.generate import PaperDigester
from localdigest.record import DigestRecord
from localdigest.store import RecordStore


def _load_backend(settings: Settings, verbose: bool, choice: str, n_ctx: int) -> Backend:
    from localdigest.backends import load_backend

    return load_backend(settings, n_ctx_hint=n_ctx, verbose=verbose, choice=choice)


def make_digester(
    settings: Settings,
    metadata_file: str | None,
    identity: dict[str, Any],
    choice: str = "",
    verbose: bool = False,
) -> PaperDigester:
    """A worker for the batch; the model is loaded on its first paper, not before."""
    return PaperDigester(
        settings,
        backend_factory=functools.partial(_load_backend, settings, verbose, choice),
        metadata_file=metadata_file,
        model_identity=identity,
    )


def worker_setup(
    settings: Settings, metadata_file: str | None = None, verbose: bool = False
) -> tuple[dict[str, Any], functools.partial[PaperDigester], str]:
    """(fingerprint, picklable worker factory, the model and how it was chosen) for
    `batch.run_batch`. The model is checked here, without loading it.

    Raises:
        UsageError: unknown model name. ModelError: no model for `auto`, or the file is missing
            or not a valid GGUF.
    """
    resolved = models.resolve(settings.model, models.models_dir(settings.models_dir))
    models.check_model_file(resolved.path, resolved.entry)
    if resolved.choice:  # decided once: every worker, on any Ray node, loads this same model
        settings = dataclasses.replace(settings, model=resolved.spec)
    identity = {"name": resolved.name, "sha256": models.sha256_of(resolved.path)}
    factory = functools.partial(
        make_digester, settings, metadata_file, identity, resolved.choice, verbose
    )
    described = f"{resolved.name} ({resolved.choice})" if resolved.choice else resolved.name
    return factory().fingerprint(), factory, described


def remember_rates(records: Sequence[DigestRecord], since: datetime) -> None:
    """Note each model's generation rate, from the records made since `since`, so that
    `models list` can say what speed to expect on this machine."""
    for record in records:
        provenance, total = record.provenance, record.stats.get("total", {})
        created = provenance.get("created")
        if not created or datetime.fromisoformat(created) < since:
            continue  # made by an earlier run, perhaps on another machine
        model_path = Path(provenance.get("model_path", ""))
        if provenance.get("model_sha256") and model_path.is_file():
            models.remember_rate(
                provenance["model_sha256"],
                model_path.stat().st_size,
                int(total.get("generated_tokens", 0)),
                float(total.get("generation_seconds", 0.0)),
            )


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
