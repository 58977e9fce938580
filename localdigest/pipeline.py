"""Wiring for `digest`: the worker the batch runs, its record key, and the records a run's
digest shows.

Kept apart from generate.py so that a worker process or Ray actor can build its own worker from
a picklable factory (functools.partial of module-level functions) without any state from the
driver.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from localdigest import glossary, models
from localdigest.backend import Backend
from localdigest.config import Settings
from localdigest.errors import ModelError
from localdigest.generate.digester import PaperDigester, StageCallback
from localdigest.metadata import MetadataIndex
from localdigest.record import DigestRecord
from localdigest.store import RecordStore


def backend_for(settings: Settings, verbose: bool, choice: str, n_ctx: int) -> Backend:
    """The model the settings name, for a context of `n_ctx` tokens (a digester's factory)."""
    from localdigest.backends import load_backend

    return load_backend(settings, n_ctx_hint=n_ctx, verbose=verbose, choice=choice)


class DigestWorker:
    """The batch's worker: a PaperDigester under a record key that names its inputs by content.

    The key holds the model's sha256 (never its name: two files called the same are different
    models), the metadata file's sha256 (not its path: an updated snapshot changes the digests)
    and the glossary's, beside the prompt version and options the digester reports.
    """

    def __init__(
        self,
        digester: PaperDigester,
        model_sha256: str,
        metadata_sha256: str | None,
        metadata_file: str | None = None,
    ) -> None:
        self.digester = digester
        self.model_sha256 = model_sha256
        self.metadata_sha256 = metadata_sha256
        self.metadata_file = metadata_file
        self._metadata_index: MetadataIndex | None = None

    def fingerprint(self) -> dict[str, Any]:
        return self.digester.fingerprint() | {
            "model_sha256": self.model_sha256,
            "metadata_sha256": self.metadata_sha256,
            "glossary_sha256": glossary.version() if self.digester.settings.glossary else None,
        }

    def process(
        self, name: str, data: bytes, on_stage: StageCallback | None = None
    ) -> DigestRecord:
        if self.metadata_file and self._metadata_index is None:
            self._metadata_index = MetadataIndex.open(self.metadata_file)
        return digest_bytes(self.digester, name, data, on_stage, self._metadata_index)


def digest_bytes(
    digester: PaperDigester,
    name: str,
    data: bytes,
    on_stage: StageCallback | None = None,
    metadata_index: MetadataIndex | None = None,
) -> DigestRecord:
    """One PDF through the stages in order: extract, the metadata file's entry, generate."""
    from localdigest import extract, metadata

    started = time.perf_counter()
    digester.report(on_stage, "extract", {})
    paper = extract.paper_from_bytes(data, name, max_pages=digester.settings.max_pages)
    if metadata_index is not None:
        paper = metadata.apply(paper, metadata_index)
    extract_seconds = time.perf_counter() - started
    record = digester.digest(paper, on_stage)
    record.stats["extract_seconds"] = round(extract_seconds, 3)
    return record


def make_worker(
    settings: Settings,
    metadata_file: str | None,
    metadata_sha256: str | None,
    identity: dict[str, Any],
    choice: str = "",
    verbose: bool = False,
) -> DigestWorker:
    """A worker for the batch; the model is loaded on its first paper, not before.

    Raises:
        ModelError: the model's sha256 is not known (records could not be keyed by it).
        TemplateError: the prompts are incomplete or list no question aspect.
    """
    if not identity.get("sha256"):
        raise ModelError(
            f"model {identity.get('name')!r} has no sha256: records are keyed by the model's "
            "content; run 'localdigest models verify'"
        )
    digester = PaperDigester(
        settings,
        backend_factory=functools.partial(backend_for, settings, verbose, choice),
        model_identity=identity,
    )
    digester.prompts.aspects  # noqa: B018 - an empty aspects.tsv stops here, not on every paper
    return DigestWorker(digester, identity["sha256"], metadata_sha256, metadata_file)


def worker_setup(
    settings: Settings, metadata_file: str | None = None, verbose: bool = False
) -> tuple[dict[str, Any], functools.partial[DigestWorker], str]:
    """(fingerprint, picklable worker factory, the model and how it was chosen) for
    `batch.run_batch`. The model is checked here, without loading it.

    Raises:
        UsageError: unknown model name. ModelError: no model for `auto`, or the file is missing
            or not a valid GGUF.
        MetadataError: the metadata file cannot be read (its index is built here, once).
    """
    resolved = models.resolve(settings.model, models.models_dir(settings.models_dir))
    models.check_model_file(resolved.path, resolved.entry)
    if resolved.choice:  # decided once: every worker, on any Ray node, loads this same model
        settings = dataclasses.replace(settings, model=resolved.spec)
    identity = {"name": resolved.name, "sha256": models.sha256_of(resolved.path)}
    metadata_sha256 = MetadataIndex.open(metadata_file).sha256 if metadata_file else None
    factory = functools.partial(
        make_worker, settings, metadata_file, metadata_sha256, identity, resolved.choice, verbose
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
    """The store's records for these inputs under this fingerprint, in input order: what this
    run's digest shows, once per paper (copies of one PDF under two names are one paper)."""
    hashes = store.hash_cache()
    found: dict[str, DigestRecord] = {}
    try:
        for path in paths:
            try:
                sha256, _ = hashes.file_sha256(path)
            except OSError:
                continue
            key = store.key(sha256, fingerprint)
            if key not in found and (record := store.get(key)) is not None:
                found[key] = record
    finally:
        hashes.close()
    return list(found.values())
