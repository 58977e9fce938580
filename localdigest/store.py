"""The record store: one JSON file per (PDF content, model, prompts, options), written atomically.

Layout under the store root:

    records/<key[:2]>/<key>.json   one DigestRecord (ensure_ascii=False, indent=2)
    records/<key[:2]>/<key>-failed.json
                                   the latest failure of a redo whose key holds a good record:
                                   a failure never replaces work that succeeded
    claims/<key>.claim             "I am processing this": host, pid, time (O_CREAT|O_EXCL)
    quarantine/                    corrupt record files moved out of the way, never deleted
    cache/sha256.sqlite            file path + size + mtime -> sha256, so a re-run of a large
                                   archive skips done papers without reading their bytes

Keys are content addresses (sha256 of the PDF bytes and of what else determines the record),
so stores written by different machines or shards merge by copying `records/` directories.

Crash safety: a record is written to a hidden temporary file in its final directory, fsynced,
renamed over the final name and the directory fsynced, so a reader sees the old state or the
whole new record, never a part. Leftover temporary files are never read as records and are
swept once their writer is gone.

Claims keep two processes (same host or not, given a shared filesystem) from processing the
same paper. A claim is stale when its process is dead (same host) or it has not been refreshed
for `stale_after` seconds (holders refresh it while they work, see `keep_alive`).

Three classes, one concern each: `RecordStore` (records, quarantine, the hash cache) holds a
`Claims` (`store.claims`) and a `TemporaryFiles` (`store.temp_files`: how a writer names its
temporary file and how leftovers are swept).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localdigest.errors import StoreError
from localdigest.files import HashCache, write_atomic
from localdigest.keys import record_key
from localdigest.record import STATUS_ERROR, STATUS_OK, DigestRecord

log = logging.getLogger("localdigest")

DEFAULT_STALE_AFTER = 600.0  # seconds without a refresh before another host may take a claim
_TMP_SUFFIX = ".tmp"
_FAILED_SUFFIX = "-failed"
_HOST = socket.gethostname()


def needs_work(record: DigestRecord | None, *, force: bool = False) -> bool:
    """Whether a paper must be (re)processed given its stored record.

    ok records are final. Error records are retried on the next run (the failure may have been
    the model, memory or an interrupted retry), except permanent input errors such as a broken
    PDF, which only `force` retries: the same bytes would fail the same way.
    """
    if force or record is None:
        return True
    if record.status == STATUS_OK:
        return False
    return not is_permanent_error(record)


def is_permanent_error(record: DigestRecord) -> bool:
    return record.status == STATUS_ERROR and bool(record.provenance.get("error_permanent"))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dir(path: Path) -> None:
    """Create `path` (and parents) durably: a new directory entry is fsynced into its parent."""
    if path.is_dir():
        return
    _make_dir(path.parent)
    try:
        path.mkdir()
    except FileExistsError:
        return
    _fsync_dir(path.parent)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass(frozen=True)
class ClaimInfo:
    """Who holds a claim, read back from its file."""

    host: str
    pid: int
    time: float
    token: str

    def is_stale(self, mtime: float, stale_after: float, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if now - mtime > stale_after:
            return True
        return self.host == _HOST and not _pid_alive(self.pid)


class RecordStore:
    """Records keyed by content and written atomically; its `claims` coordinate concurrent
    processes and its `temp_files` clean up after dead writers.

    Args:
        root: the store directory (created on first write).
        stale_after: seconds after which an unrefreshed claim or temporary file is abandoned.
    """

    def __init__(self, root: str | Path, *, stale_after: float = DEFAULT_STALE_AFTER) -> None:
        self.root = Path(root)
        self.stale_after = stale_after
        self.claims = Claims(self.root / "claims", stale_after)
        self.temp_files = TemporaryFiles(self.records_dir, stale_after)

    @property
    def records_dir(self) -> Path:
        return self.root / "records"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    key = staticmethod(record_key)

    def path_for(self, key: str) -> Path:
        return self.records_dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> DigestRecord | None:
        """The record stored under `key`; None when absent or corrupt (corrupt ones are quarantined)."""
        return self._load(self.path_for(key))

    def failure_path_for(self, key: str) -> Path:
        return self.records_dir / key[:2] / f"{key}{_FAILED_SUFFIX}.json"

    def put(self, key: str, record: DigestRecord) -> Path:
        """Write `record` under `key` atomically; a crash leaves the old state or the new record.

        An error record never replaces an ok one: it is written beside it (`failure_path_for`),
        so a failed redo keeps the last good digest and still tells why the redo failed. An ok
        record removes such a failure, which it supersedes.

        Returns:
            The file written.

        Raises:
            StoreError: the store directory cannot be written.
        """
        path = self.path_for(key)
        if record.status == STATUS_ERROR and self._holds_ok(path):
            return self._write(self.failure_path_for(key), record)
        self._write(path, record)
        if record.status == STATUS_OK:
            with contextlib.suppress(FileNotFoundError):
                self.failure_path_for(key).unlink()
        return path

    def _holds_ok(self, path: Path) -> bool:
        existing = self._load(path)
        return existing is not None and existing.status == STATUS_OK

    def _write(self, path: Path, record: DigestRecord) -> Path:
        text = json.dumps(record.to_dict(), ensure_ascii=False, indent=2) + "\n"
        tmp = self.temp_files.name_for(path)
        try:
            _make_dir(path.parent)
            write_atomic(path, text, tmp=tmp, mode=0o644)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot write record: {exc.strerror or exc}") from None
        return path

    def records(
        self, fingerprint: dict[str, Any] | None = None
    ) -> Iterator[tuple[str, DigestRecord]]:
        """Every valid record as (key, record), in key order; corrupt files are quarantined.

        Failures kept beside a good record are not listed: the good record is the key's record.

        With `fingerprint`, only records made with it (the current model, prompts and options),
        which is what `render` wants when the store also holds records of older settings.
        """
        if not self.records_dir.is_dir():
            return
        for bucket in sorted(p for p in self.records_dir.iterdir() if p.is_dir()):
            for path in sorted(bucket.glob("*.json")):
                if path.name.startswith(".") or path.stem.endswith(_FAILED_SUFFIX):
                    continue
                record = self._load(path)
                if record is None:
                    continue
                key = path.stem
                if fingerprint is None or record_key(record.source_sha256, fingerprint) == key:
                    yield key, record

    def __len__(self) -> int:
        return sum(1 for _ in self.records())

    def _load(self, path: Path) -> DigestRecord | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self._quarantine(path, f"unreadable: {exc}")
            return None
        try:
            data = json.loads(text)
            record = DigestRecord.from_dict(data)
        except StoreError as exc:  # a newer localdigest's record: kept, never redone over
            raise StoreError(f"{path}: {exc}") from None
        except (ValueError, TypeError, KeyError) as exc:
            self._quarantine(path, f"not a valid record: {exc}")
            return None
        return record

    def _quarantine(self, path: Path, reason: str) -> None:
        target = self.quarantine_dir / f"{path.name}.{int(time.time())}.{uuid.uuid4().hex[:8]}"
        try:
            _make_dir(self.quarantine_dir)
            os.replace(path, target)
        except OSError as exc:
            log.warning("%s: corrupt record skipped (%s); cannot quarantine: %s", path, reason, exc)
            return
        log.warning("%s: corrupt record moved to %s (%s); it will be redone", path, target, reason)

    def hash_cache(self) -> HashCache:
        """The sha256 cache of input files, local to this store (not merged with records)."""
        return HashCache(self.root / "cache" / "sha256.sqlite")


class TemporaryFiles:
    """The record writers' temporary files: named after their writer (`.<key>[-failed].<pid>@
    <host>.tmp`) so that leftovers of a dead writer can be told apart and swept.

    Args:
        directory: the records directory whose buckets hold them.
        stale_after: seconds after which a temporary file of a writer on another host is
            abandoned (on this host, a dead pid is enough).
    """

    def __init__(self, directory: Path, stale_after: float) -> None:
        self.directory = directory
        self.stale_after = stale_after

    @staticmethod
    def name_for(path: Path) -> Path:
        """The temporary file this process writes `path` through."""
        return path.with_name(f".{path.stem}.{os.getpid()}@{_HOST}{_TMP_SUFFIX}")

    def sweep(self) -> int:
        """Remove temporary files left by dead writers. Returns how many were removed."""
        if not self.directory.is_dir():
            return 0
        removed = 0
        for tmp in self.directory.glob(f"*/.*{_TMP_SUFFIX}"):
            # ".<key>[-failed].<pid>@<host>.tmp": the key has no dots, a host name may.
            owner = tmp.name[1 : -len(_TMP_SUFFIX)].partition(".")[2]
            pid_text, _, host = owner.partition("@")
            try:
                mtime = tmp.stat().st_mtime
                info = ClaimInfo(host, int(pid_text), mtime, "")
                if info.is_stale(mtime, self.stale_after) and pid_text != str(os.getpid()):
                    tmp.unlink()
                    removed += 1
            except (OSError, ValueError):
                continue
        return removed


class Claims:
    """Claim files: which process works on which key, so that two never do the same paper.

    Args:
        directory: where claim files live (`<store>/claims`; created on the first claim).
        stale_after: seconds after which an unrefreshed claim is abandoned.
    """

    def __init__(self, directory: Path, stale_after: float) -> None:
        self.directory = directory
        self.stale_after = stale_after
        self._held: dict[str, str] = {}  # key -> token of the claims this object holds
        self._lock = threading.Lock()

    def path_for(self, key: str) -> Path:
        return self.directory / f"{key}.claim"

    def claim(self, key: str) -> bool:
        """Try to become the one process that works on `key`. False: someone else holds it.

        A stale claim (dead process, or not refreshed for `stale_after` seconds) is taken over.
        """
        path = self.path_for(key)
        token = uuid.uuid4().hex
        info = {"host": _HOST, "pid": os.getpid(), "time": time.time(), "token": token}
        try:
            _make_dir(self.directory)
        except OSError as exc:
            raise StoreError(
                f"{self.directory.parent}: cannot create claims: {exc.strerror or exc}"
            ) from None
        for _attempt in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if self._break_if_stale(path):
                    continue
                return False
            try:
                os.write(fd, json.dumps(info).encode("utf-8"))
            finally:
                os.close(fd)
            with self._lock:
                self._held[key] = token
            return True
        return False

    def release(self, key: str) -> None:
        """Give up a claim this store object holds; someone else's claim is left alone."""
        with self._lock:
            token = self._held.pop(key, None)
        if token is None:
            return
        path = self.path_for(key)
        holder = self._read(path)
        if holder is not None and holder.token == token:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def release_all(self) -> None:
        for key in list(self._held):
            self.release(key)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def refresh(self) -> None:
        """Touch every held claim so other hosts see it is alive."""
        for key in self.held():
            with contextlib.suppress(OSError):
                os.utime(self.path_for(key))

    @contextlib.contextmanager
    def keep_alive(self, interval: float | None = None) -> Iterator[None]:
        """Refresh held claims from a background thread while the block runs (long papers)."""
        interval = self.stale_after / 4 if interval is None else interval
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(interval):
                self.refresh()

        thread = threading.Thread(target=beat, name="localdigest-claims", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def sweep(self) -> int:
        """Remove the claims of dead or silent holders. Why: a process killed after writing a
        record but before releasing its claim leaves a claim no later run would touch (the
        paper is done, so it is never claimed again). Returns how many were removed."""
        return sum(self._break_if_stale(self.path_for(key)) for key in self.stale())

    def stale(self) -> list[str]:
        """Keys whose claims are stale (left by crashed processes), for reports and tests."""
        if not self.directory.is_dir():
            return []
        stale = []
        for path in sorted(self.directory.glob("*.claim")):
            holder = self._read(path)
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue
            if holder is None or holder.is_stale(mtime, self.stale_after):
                stale.append(path.name.removesuffix(".claim"))
        return stale

    def _read(self, path: Path) -> ClaimInfo | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return ClaimInfo(
                str(data["host"]), int(data["pid"]), float(data["time"]), str(data["token"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _break_if_stale(self, path: Path) -> bool:
        """Remove a stale claim so the caller can retry. Only one process breaks at a time.

        A guard file (O_EXCL) serialises breakers; under it the claim is read again, so a
        breaker never removes a fresh claim another breaker has just created.
        """
        guard = path.with_name(path.name + ".break")
        try:
            fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            # A breaker killed inside this tiny window would block the key forever.
            with contextlib.suppress(OSError):
                if time.time() - guard.stat().st_mtime > 60:
                    guard.unlink()
            return False
        os.close(fd)
        try:
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                return True
            holder = self._read(path)
            if holder is None:
                # Unreadable: a writer may be between create and write; give it a grace period.
                stale = time.time() - mtime > 60
            else:
                stale = holder.is_stale(mtime, self.stale_after)
            if not stale:
                return False
            who = f"{holder.host} pid {holder.pid}" if holder else "unknown holder"
            log.info("%s: taking over stale claim of %s", path.stem, who)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                guard.unlink()
