"""Writing files so that a reader never sees half of one: the one helper every module uses."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomic(path: Path, text: str, *, tmp: Path | None = None, mode: int = 0o666) -> None:
    """Write `text` (UTF-8) through a temporary file beside `path`, fsync it and rename it over
    `path` (its directories made as needed): a crash or a concurrent reader sees the old file
    or the new one, never a mix.

    `tmp` names the temporary file where the caller recognizes its own leftovers (the record
    store's `<key>.<pid>@<host>.tmp`); by default the name is unique to this call, so processes
    writing the same file at once do not share one. `mode` is subject to the process's umask.
    The temporary file is removed when anything fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp or path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
