"""Hostile PDFs: corpus papers mutated from a fixed seed, run as one batch through extraction
and the whole pipeline (fake backend). Every case must end in a record or a one-line error:
no unexpected exception, no time-out (a hang), no lost batch.

The normal test run takes a few cases of each mutation; `make fuzz` (FUZZ_CASES=all) takes all
of them and prints the counts:

    FUZZ_CASES=all .venv/bin/pytest -q tests/test_fuzz.py
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CORPUS, requires_corpus

from localdigest.backend import GenerationOptions, Message
from localdigest.backends.fake import FakeBackend
from localdigest.batch import run_batch
from localdigest.config import Settings
from localdigest.generate.digester import PaperDigester
from localdigest.pipeline import DigestWorker
from localdigest.store import RecordStore

pytestmark = [requires_corpus, pytest.mark.corpus]

SEED = 16
VARIANTS = 4  # of each mutation of each corpus paper: 20 papers x 4 mutations x 4 = 320
QUICK_CASES = 2  # of each mutation in the normal test run
FAKE_SHA256 = "f" * 64
PAPER_TIMEOUT = 120  # seconds; a corpus paper takes 1-5 s here, so only a hang reaches it
# Failures that are the input's (or the machine's), reported in one line by design. Anything
# else is an exception nobody planned for: what the fuzz is looking for.
CLEAN_ERRORS = {"PDFError", "GenerationError", "ModelError", "MetadataError", "TemplateError"}
_OBJECT = re.compile(rb"\n\d+ 0 obj\b.*?\bendobj\b", re.S)


def truncated(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randint(len(data) // 20, len(data) - 1)]


def bytes_flipped(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 64)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def range_zeroed(data: bytes, rng: random.Random) -> bytes:
    start = rng.randrange(len(data))
    length = rng.randint(16, max(17, len(data) // 8))
    return data[:start] + bytes(min(length, len(data) - start)) + data[start + length :]


def objects_duplicated(data: bytes, rng: random.Random) -> bytes:
    """Copies of objects inserted before others: the same object number defined twice."""
    objects = list(_OBJECT.finditer(data))
    out = data
    for _ in range(rng.randint(1, 8)):
        copied = rng.choice(objects).group(0)
        at = rng.choice(objects).start()
        out = out[:at] + copied + out[at:]
    return out


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncated": truncated,
    "flipped": bytes_flipped,
    "zeroed": range_zeroed,
    "duplicated": objects_duplicated,
}


def cases(directory: Path, per_mutation: int | None) -> list[Path]:
    """Write the mutated PDFs (all of them, or `per_mutation` of each kind picked from all
    papers) and the corpus's broken PDFs as they are. Each case has its own seed, so a case's
    bytes do not depend on which others are written."""
    directory.mkdir()
    papers = sorted((CORPUS / "papers").glob("*.pdf"))
    chosen = []
    for name in MUTATIONS:
        specs = [(paper, variant) for paper in papers for variant in range(VARIANTS)]
        if per_mutation is not None:
            specs = random.Random(f"{SEED}:{name}").sample(specs, per_mutation)
        chosen += [(paper, name, variant) for paper, variant in specs]
    written = []
    for paper, name, variant in chosen:
        rng = random.Random(f"{SEED}:{paper.name}:{name}:{variant}")
        path = directory / f"{paper.stem}.{name}{variant}.pdf"
        path.write_bytes(MUTATIONS[name](paper.read_bytes(), rng))
        written.append(path)
    return written + sorted((CORPUS / "bad").glob("*.pdf"))


def _reply(messages: list[Message], options: GenerationOptions) -> str:
    return "本論文は新しい手法を提案し、三つのベンチマークで評価した。"


def fake_pipeline() -> DigestWorker:
    """The real worker (extraction, budgeting, prompts, checks) on a fake model."""
    digester = PaperDigester(
        Settings(questions=3, retries=0),
        backend=FakeBackend(_reply),
        model_identity={"name": "fake", "sha256": FAKE_SHA256},
    )
    return DigestWorker(digester, FAKE_SHA256, None)


def test_mutated_corpus_pdfs_end_in_a_record_or_a_one_line_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    everything = os.environ.get("FUZZ_CASES") == "all"
    inputs = cases(tmp_path / "cases", None if everything else QUICK_CASES)
    store = RecordStore(tmp_path / "store")
    summary = run_batch(
        inputs,
        store,
        fake_pipeline,
        fingerprint=fake_pipeline().fingerprint(),
        paper_timeout=PAPER_TIMEOUT,
    )

    records = [r for _, r in store.records()]
    kinds = Counter(
        "record" if r.status == "ok" else r.provenance.get("error_type") for r in records
    )
    unexpected = [
        r
        for r in records
        if r.status != "ok"
        and r.provenance.get("error_type") not in CLEAN_ERRORS | {"PaperTimeout", "WorkerDied"}
    ]
    hangs = kinds["PaperTimeout"]
    clean = sum(n for kind, n in kinds.items() if kind in CLEAN_ERRORS | {"WorkerDied"})
    stderr = capfd.readouterr().err
    with capfd.disabled():  # the counts `make fuzz` reports; -s is not needed
        print(
            f"\nfuzz: {len(inputs)} cases (seed {SEED}), {summary.done} records, {clean} clean "
            f"errors ({dict(kinds - Counter(record=kinds['record']))}), "
            f"tracebacks={len(unexpected) + stderr.count('Traceback')}, hangs={hangs}, "
            f"{summary.seconds:.0f} s"
        )
    assert not summary.interrupted and summary.busy == 0
    assert summary.done + summary.failed + summary.skipped == len(inputs)  # no lost paper
    assert summary.done == kinds["record"] > 0
    assert [f"{r.source_path}: {r.error}" for r in unexpected] == []
    assert "Traceback" not in stderr
    assert hangs == 0
    assert all("\n" not in (r.error or "") for r in records)
