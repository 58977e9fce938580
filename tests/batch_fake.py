"""A fake batch worker for the batch tests, and a script that runs a batch in a subprocess.

The worker makes a deterministic DigestRecord from the PDF bytes (no model), can be slowed
down so a test can kill it mid-batch, and appends one line per paper it processes to a log
file, so tests can count how often each paper was processed across processes. It can also
misbehave as real papers and machines do: hang (in a stage, deaf to SIGINT like C code), or
kill its own process (an out-of-memory kill, a crash in a PDF parser).

    python tests/batch_fake.py STORE LIST [--setup module:function] [--delay S] [--log FILE]
        [--block STAGE:SECONDS] [--slow-fsync SECONDS]

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
import signal
import stat
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
        block: str | None = None,
        kill_file: str | None = None,
        kills: int = 0,
    ) -> None:
        """Args beyond the obvious:
        block: "STAGE:SECONDS": each paper reports STAGE and stays in it that long with SIGINT
            held back, as a long C call (MuPDF, llama.cpp) does. Without it, a paper holding
            b"HANGS-IN-EXTRACT" or b"HANGS" does so for an hour in "extract" or "generate".
        kill_file, kills: the first `kills` papers processed (counted in kill_file, across
            processes) SIGKILL their own process; a paper holding b"KILLS-WORKER" always does.
        """
        self.delay = delay
        self.log = log
        self.model = model
        self.fail_marker = fail_marker
        self.block = block
        self.kill_file = kill_file
        self.kills = kills

    def fingerprint(self) -> dict[str, Any]:
        return fake_fingerprint(self.model)

    def process(self, name: str, data: bytes, on_stage: Any = None) -> DigestRecord:
        if not data.startswith(b"%PDF"):
            raise PDFError(name, "not a PDF (no %PDF header)")
        sha = hashlib.sha256(data).hexdigest()
        self._maybe_die(data)
        if self.block:
            stage, _, seconds = self.block.partition(":")
            deaf_in(stage, float(seconds), on_stage)
        elif b"HANGS-IN-EXTRACT" in data:
            deaf_in("extract", 3600, on_stage)
        elif b"HANGS" in data:
            deaf_in("generate", 3600, on_stage)
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

    def _maybe_die(self, data: bytes) -> None:
        if b"KILLS-WORKER" in data:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kill_file and self.kills:
            fd = os.open(self.kill_file, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size >= self.kills:
                    return
                os.write(fd, b"x")
            finally:
                os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)


def deaf_in(stage: str, seconds: float, on_stage: Any) -> None:
    """Report `stage`, then spend `seconds` in it deaf to Ctrl-C, as a long C call is: a
    SIGINT meanwhile takes effect only when it returns."""
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        if on_stage:
            on_stage(stage, {})
        time.sleep(seconds)
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


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

    # A shell starts background jobs with SIGINT ignored, and children inherit that: the tests
    # send Ctrl-C themselves, so it must take effect however pytest was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("list")
    parser.add_argument("--setup", default="batch_fake:setup")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log")
    parser.add_argument("--block", help="STAGE:SECONDS, see FakeWorker")
    parser.add_argument("--slow-fsync", type=float, default=0.0, help="a slow disk under the store")
    args = parser.parse_args()
    module, _, function = args.setup.partition(":")
    kwargs: dict[str, Any] = {"delay": args.delay, "log": args.log}
    if args.block:
        kwargs["block"] = args.block
    if args.slow_fsync:
        real_fsync = os.fsync

        def slow_fsync(fd: int) -> None:
            if stat.S_ISREG(os.fstat(fd).st_mode):  # a record's data, not a directory entry
                time.sleep(args.slow_fsync)
            real_fsync(fd)

        os.fsync = slow_fsync
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
