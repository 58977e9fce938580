"""A fake batch worker for the batch tests, and a script that runs a batch in a subprocess.

The worker makes a deterministic DigestRecord from the PDF bytes (no model), can be slowed
down so a test can kill it mid-batch, and appends one line per paper it processes to a log
file, so tests can count how often each paper was processed across processes.

    python tests/batch_fake.py STORE LIST [--setup module:function] [--delay S] [--log FILE]

`--setup` names a function returning (fingerprint, worker_factory); the default builds this
fake, and a real digester can be swapped in without changing the tests' logic.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from localdigest.errors import GenerationError, PDFError
from localdigest.paper import PaperMetadata
from localdigest.record import DigestRecord, QAPair


class FakeWorker:
    def __init__(
        self,
        *,
        delay: float = 0.0,
        log: str | None = None,
        model: str = "fake-model",
        fail_marker: bytes = b"GENERATION-FAILS",
    ) -> None:
        self.delay = delay
        self.log = log
        self.model = model
        self.fail_marker = fail_marker

    def fingerprint(self) -> dict[str, Any]:
        return fake_fingerprint(self.model)

    def process(self, name: str, data: bytes, on_stage: Any = None) -> DigestRecord:
        if not data.startswith(b"%PDF"):
            raise PDFError(name, "not a PDF (no %PDF header)")
        sha = hashlib.sha256(data).hexdigest()
        if on_stage:
            on_stage("generate", {"tokens_per_second": 12.5})
        if self.delay:
            time.sleep(self.delay)
        if self.log:
            fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{os.getpid()} {sha}\n".encode())
            finally:
                os.close(fd)
        if self.fail_marker in data:
            raise GenerationError("answers failed validation after 2 retries")
        return DigestRecord(
            source_path=name,
            source_sha256=sha,
            metadata=PaperMetadata(title=f"Paper {sha[:8]}"),
            abstract_ja=f"概要 {sha[:16]}",
            summary_ja=f"要約 {sha[:8]}。",
            qa=[QAPair(question="何を提案したか？", answer=f"手法 {sha[:4]}。", pages=[1])],
            provenance={"model": self.model, "model_sha256": f"sha-{self.model}"},
        )


def fake_fingerprint(model: str = "fake-model") -> dict[str, Any]:
    return {"model_sha256": f"sha-{model}", "prompt_version": 1, "options": {"seed": 42}}


def setup(**kwargs: Any) -> tuple[dict[str, Any], Any]:
    """(fingerprint, picklable factory) for the fake worker."""
    return fake_fingerprint(kwargs.get("model", "fake-model")), functools.partial(
        FakeWorker, **kwargs
    )


def make_pdfs(directory: Path, count: int, prefix: str = "2401.0") -> list[Path]:
    """`count` small distinct one-page PDFs named like arXiv papers."""
    import pymupdf

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        doc = pymupdf.open()
        page = doc.new_page()
        page.insert_text((72, 72), f"Paper number {i}: a study of things.")
        path = directory / f"{prefix}{i:04d}v1.pdf"
        doc.save(path)
        doc.close()
        paths.append(path)
    return paths


def main() -> int:
    from localdigest.batch import run_batch
    from localdigest.progress import JsonProgress
    from localdigest.store import RecordStore

    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("list")
    parser.add_argument("--setup", default="batch_fake:setup")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log")
    args = parser.parse_args()
    module, _, function = args.setup.partition(":")
    kwargs = {"delay": args.delay, "log": args.log}
    fingerprint, factory = getattr(importlib.import_module(module), function)(**kwargs)
    paths = [Path(line) for line in Path(args.list).read_text().splitlines() if line]
    summary = run_batch(
        paths,
        RecordStore(args.store),
        factory,
        fingerprint=fingerprint,
        progress=JsonProgress(sys.stdout),
    )
    print(json.dumps({"summary": summary.to_dict()}), flush=True)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
