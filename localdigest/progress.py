"""Batch progress: one event type, and renderers for people (text) and programs (JSON lines);
and the log on stderr that the CLI and its worker processes write alike."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

# Stages the batch itself reports; a worker adds its own ("extract", "generate", ...) in between.
SKIPPED = "skipped"  # a valid record exists
BUSY = "busy"  # another process holds the claim
STARTED = "started"
DONE = "done"
FAILED = "failed"
FINISHED = "finished"  # last event of a batch; path is ""


def log_to_stderr(level: int) -> None:
    """Send the "localdigest" log to stderr as bare messages at `level`: the CLI's process and
    each worker process it starts (a child does not inherit the parent's handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("localdigest")
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


@dataclass
class ProgressEvent:
    """Where a batch stands. `index` is the paper's 1-based position among `total` inputs."""

    index: int
    total: int
    path: str
    stage: str
    done: int = 0
    skipped: int = 0
    failed: int = 0
    elapsed_seconds: float = 0.0
    eta_seconds: float | None = None
    tokens_per_second: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. {"reason": ...} on failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_duration(seconds: float) -> str:
    """`1:02:03` / `4:05`: compact enough for a progress line."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TextProgress:
    """Human progress on a stream: a line per paper stage with counts and ETA.

    Papers that are skipped produce no line (an archive re-run would print thousands).
    `quiet` prints failures only, which is what a cron job should mail.
    """

    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage in (SKIPPED, BUSY, FINISHED):
            return
        if self.quiet and event.stage != FAILED:
            return
        width = len(str(event.total))
        head = f"[{event.index:>{width}}/{event.total}]"
        parts = [event.stage if event.stage != FAILED else "FAILED"]
        if event.stage == FAILED and event.detail.get("reason"):
            parts[0] += f": {event.detail['reason']}"
        if event.tokens_per_second:
            parts.append(f"{event.tokens_per_second:.1f} tok/s")
        if event.eta_seconds is not None and event.stage != FAILED:
            parts.append(f"ETA {format_duration(event.eta_seconds)}")
        self.stream.write(f"{head} {event.path}: {' · '.join(parts)}\n")
        self.stream.flush()


class JsonProgress:
    """`--progress json`: one JSON object per event and line, flushed at once, for programs."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, event: ProgressEvent) -> None:
        self.stream.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        self.stream.flush()
