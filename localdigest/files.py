"""Files written whole, and hashed once: the helpers every module uses for both.

`write_atomic` writes so that a reader never sees half a file; `HashCache` remembers the sha256
of a file by its identity (path, size, mtime, inode), for the input PDFs of a record store and
for model files alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import uuid
from pathlib import Path

log = logging.getLogger("localdigest.files")


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


class HashCache:
    """sha256 of input files by (resolved path, size, mtime, inode): an optimisation only.

    Any SQLite failure (locked for long, read-only or network filesystem, corrupt file) turns
    the cache off for the run; the batch then hashes the bytes as it would without it. The
    batch re-hashes the bytes it reads for processing, so a stale entry cannot mis-file a record.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit, no fsync: holds no lock between writes, so concurrent batches never
            # wait on each other, and a lost entry only costs a re-hash.
            self._conn = sqlite3.connect(path, timeout=10, isolation_level=None)
            self._conn.execute("PRAGMA synchronous=OFF")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER,"
                " mtime_ns INTEGER, inode INTEGER, sha256 TEXT)"
            )
        except (OSError, sqlite3.Error) as exc:
            self._disable(exc)

    def _disable(self, exc: Exception) -> None:
        log.debug("%s: hash cache off: %s", self.path, exc)
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None

    @staticmethod
    def _identity(path: Path, st: os.stat_result) -> tuple[str, int, int, int]:
        return os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino

    def get(self, path: Path, st: os.stat_result) -> str | None:
        if self._conn is None:
            return None
        name, size, mtime_ns, inode = self._identity(path, st)
        try:
            row = self._conn.execute(
                "SELECT sha256 FROM files WHERE path = ? AND size = ? AND mtime_ns = ? AND inode = ?",
                (name, size, mtime_ns, inode),
            ).fetchone()
        except sqlite3.Error as exc:
            self._disable(exc)
            return None
        return str(row[0]) if row else None

    def put(self, path: Path, st: os.stat_result, sha256: str) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                (*self._identity(path, st), sha256),
            )
        except sqlite3.Error as exc:
            self._disable(exc)

    def file_sha256(self, path: Path) -> tuple[str, bytes | None]:
        """The sha256 of the file at `path`: remembered when this exact file was hashed before,
        else hashed from its bytes and remembered; the bytes too when they had to be read.

        Raises:
            OSError: the file cannot be read.
        """
        stat = os.stat(path)
        sha256 = self.get(path, stat)
        if sha256 is not None:
            return sha256, None
        data = Path(path).read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        self.put(path, stat, sha256)
        return sha256, data

    def close(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._conn = None
