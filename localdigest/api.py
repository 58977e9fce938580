"""The library under the CLI: what `digest`, `render` and `extract` do, callable from Python.

    from localdigest import api
    result = api.digest(["paper.pdf"], api.settings(questions=5), "out")
    print(result.summary.render(), *result.written, sep="\\n")

Each function takes checked `Settings` (`api.settings(**flags)`: the config files and the
LOCALDIGEST_* environment, then these, as the command line would have them) and raises the
`LocaldigestError` subclasses of `localdigest.errors`; cli.py only parses, calls one of these,
prints and maps those errors to exit codes. Heavy libraries (llama_cpp, pymupdf) are imported
by the stages when they run, not by importing this module.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from localdigest.config import Settings, load_settings
from localdigest.inputs import Selection
from localdigest.record import DigestRecord, japanese_coverage

if TYPE_CHECKING:
    from localdigest.backend import Backend
    from localdigest.batch import BatchSummary, ProgressCallback
    from localdigest.errors import PDFError
    from localdigest.executors.work import StageCallback
    from localdigest.paper import Paper

__all__ = ["RunResult", "Selection", "Settings", "digest", "digest_paper", "extract", "render",
           "settings"]  # fmt: skip


def settings(**flags: Any) -> Settings:
    """The settings a command would run with: localdigest.toml, then LOCALDIGEST_* variables,
    then `flags` (None: not given), each checked.

    Raises:
        ConfigError: an unknown setting, or a value its kind refuses.
    """
    return load_settings().with_flags(**flags)


@dataclass
class RunResult:
    """What a `digest` run did: its counts, this run's records (one per paper, in input
    order), the digest files written and the model that made them."""

    summary: BatchSummary
    inputs: list[Path]
    records: list[DigestRecord] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    model: str = ""  # its name, and how `auto` chose it where it did

    @property
    def exit_code(self) -> int:
        """0 all papers succeeded, 1 some failed, 130 interrupted (as the CLI exits)."""
        return self.summary.exit_code

    def japanese_coverage(self) -> tuple[int, int]:
        """(sentences shown in Japanese, sentences digested) over this run's records."""
        return japanese_coverage(self.records)


def digest(
    inputs: Iterable[str | Path] | str | Path,
    settings: Settings | None,
    out: str | Path,
    *,
    selection: Selection | None = None,
    metadata: str | Path | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    verbose: bool = False,
    stdin: TextIO | None = None,
) -> RunResult:
    """Digest PDFs into the record store and render this run's digest into `out`.

    Args:
        inputs: PDF files, directories, globs, list files or "-" (see `localdigest.inputs`).
        settings: checked settings (None: `api.settings()`); the store is `settings.store`, else
            `out`/records; `formats` are the files written.
        out: the directory the digest files go to.
        selection: which of the inputs to take (shard, date and category filters, limit).
        metadata: an arXiv metadata file the records and the date/category filters read.
        force: redo papers that already have a record (a failed redo keeps the old record).
        progress: receives a `progress.ProgressEvent` per stage of each paper.
        verbose: pass llama.cpp's own logs through to stderr.
        stdin: where "-" reads paths from (default sys.stdin).

    Returns:
        The run's summary, records and files; `exit_code` says how it ended. A failed paper is
        recorded and counted, not raised.

    Raises:
        UsageError: no PDF to process, a bad selection, Ray settings without the Ray executor.
        ModelError: no model, or its file is missing or invalid. MetadataError, StoreError,
        TemplateError, WorkerError: see `batch.run_batch` and `render.write_digest`.
    """
    from localdigest import batch, pipeline, render
    from localdigest import inputs as input_sets
    from localdigest.store import RecordStore

    settings = settings or load_settings()
    specs = [str(inputs)] if isinstance(inputs, (str, Path)) else [str(i) for i in inputs]
    metadata_file = str(metadata) if metadata else None
    paths = input_sets.select(
        specs, selection or Selection(), metadata_file, stdin=stdin or sys.stdin
    )
    store = RecordStore(Path(settings.store or Path(out) / "records"))
    started = datetime.now(timezone.utc).replace(microsecond=0)
    fingerprint, factory, model = pipeline.worker_setup(settings, metadata_file, verbose=verbose)
    settings.check_executor()
    summary = batch.run_batch(
        paths,
        store,
        factory,
        fingerprint=fingerprint,
        executor=settings.executor,
        force=force,
        paper_timeout=settings.paper_timeout or None,
        progress=progress,
        ray_address=settings.ray_address or None,
        num_workers=settings.workers or None,
        gpus_per_worker=settings.gpus_per_worker,
    )
    records = pipeline.records_for(paths, store, fingerprint)
    if settings.executor == "local":  # Ray workers may run on other machines
        pipeline.remember_rates(records, since=started)
    written = (
        render.write_digest(records, Path(out), settings.digest_formats, settings)
        if records
        else []
    )
    return RunResult(summary, paths, records, written, model)


def digest_paper(
    pdf: str | Path,
    settings: Settings | None = None,
    *,
    backend: Backend | None = None,
    on_stage: StageCallback | None = None,
) -> DigestRecord:
    """One PDF digested here, in this process, with `backend` (default: the model the settings
    name, loaded when first needed): no record store, no worker process, no time limit. For
    notebooks, the fake backend in tests and `benchmarks/bench.py`, which watches every call;
    `on_stage(stage, detail)` hears each stage begin.

    Raises:
        PDFError: the PDF cannot be read. ModelError, GenerationError: see `PaperDigester`.
    """
    from localdigest.generate.digester import PaperDigester
    from localdigest.pipeline import backend_for, digest_bytes

    settings = settings or load_settings()
    factory = None if backend else functools.partial(backend_for, settings, False, "")
    digester = PaperDigester(settings, backend=backend, backend_factory=factory)
    path = Path(pdf)
    return digest_bytes(digester, path.name, path.read_bytes(), on_stage)


def render(
    records: Sequence[DigestRecord] | Sequence[str | Path],
    fmt: str = "txt",
    settings: Settings | None = None,
    *,
    every: bool = False,
) -> str:
    """A digest of `records` (records, or record files and directories of them) in a built-in
    format (txt, md, html, json, bilingual-txt, bilingual-md) or a `.j2` template's path.

    From files, each paper (source PDF) appears once, its newest successful record, unless
    `every`. Order, punctuation and intro come from `settings`.

    Raises:
        StoreError: no record found, or a file is not a record.
        TemplateError, UsageError: a bad template, or an unknown format.
    """
    from localdigest import render as rendering

    settings = settings or load_settings()
    if all(isinstance(r, DigestRecord) for r in records):
        found = [r for r in records if isinstance(r, DigestRecord)]
    else:
        found = rendering.load_records([Path(str(r)) for r in records], every=every)
    return rendering.render(found, fmt, settings=settings, order=settings.order)


def extract(
    pdfs: Iterable[str | Path] | str | Path,
    settings: Settings | None = None,
    *,
    metadata: str | Path | None = None,
    password: str | None = None,
) -> Iterator[tuple[Path, Paper | PDFError]]:
    """What extraction finds in each PDF (at most `settings.max_pages` pages), with the
    bibliographic fields of `metadata` where it has the paper; a PDF that cannot be read
    gives its `PDFError` and the others go on.

    Raises:
        MetadataError: the metadata file cannot be read (before any PDF is read).
    """
    from localdigest import extract as extraction
    from localdigest import metadata as meta
    from localdigest.errors import PDFError

    settings = settings or load_settings()
    index = meta.MetadataIndex.open(metadata) if metadata else None
    for pdf in [pdfs] if isinstance(pdfs, (str, Path)) else pdfs:
        path = Path(pdf)
        try:
            paper = extraction.paper(path, password=password, max_pages=settings.max_pages)
        except PDFError as exc:
            yield path, exc
            continue
        yield path, meta.apply(paper, index)
