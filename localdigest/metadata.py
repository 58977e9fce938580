"""Bibliographic metadata from offline files, and its merge into a paper.

Offline files come in two shapes: the arXiv metadata snapshot (JSON lines, millions of them) and
arXiv API Atom XML responses. Snapshots are indexed once (id -> byte offset, in a small SQLite
file in the cache directory keyed by the file's path, size and mtime) so that a lookup reads one
line instead of loading gigabytes; the same pass hashes the file, whose sha256 is part of every
record key made with it. An index is built under a name of its own and renamed into place, so
processes building the same index at once each end with a whole one.

Ids are validated (`arxiv.split_arxiv_id`): an entry whose id is not an arXiv id is left out,
so a crafted file cannot smuggle markup into the URLs the digests link to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError, iterparse

from localdigest import paths
from localdigest.arxiv import arxiv_url, split_arxiv_id
from localdigest.errors import MetadataError
from localdigest.paper import Paper, PaperMetadata

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV_NS = "{http://arxiv.org/schemas/atom}"
_SNAPSHOT_ID_RE = re.compile(rb'"id"\s*:\s*"([^"]+)"')
_INDEX_VERSION = 2  # 2: the index holds the file's sha256


def _clean(text: str | None) -> str | None:
    """Collapse the line breaks and runs of spaces metadata files keep from LaTeX sources."""
    if text is None:
        return None
    cleaned = " ".join(text.split())
    return cleaned or None


def _snapshot_date(created: str) -> str | None:
    """ISO date from a snapshot version's `created` ("Mon, 2 Apr 2007 19:18:42 GMT")."""
    try:
        return parsedate_to_datetime(created).date().isoformat()
    except (TypeError, ValueError, IndexError):
        return None


def _version_number(label: str) -> int | None:
    digits = label.strip().lstrip("vV")
    return int(digits) if digits.isdigit() else None


def _authors_from_snapshot(record: dict[str, Any]) -> list[str]:
    parsed = record.get("authors_parsed")
    if parsed:
        names = []
        for parts in parsed:
            last, first, suffix = ([*parts, "", "", ""])[:3]
            names.append(" ".join(p.strip() for p in (first, last, suffix) if p and p.strip()))
        return [n for n in names if n]
    raw = _clean(record.get("authors")) or ""
    return [a.strip() for a in re.split(r",\s*|\s+and\s+", raw) if a.strip()]


def from_snapshot_record(record: dict[str, Any], source: str) -> PaperMetadata:
    """PaperMetadata from one arXiv snapshot JSON record.

    Raises:
        MetadataError: the record's id is not an arXiv id.
    """
    found = split_arxiv_id(str(record["id"]))
    if found is None:
        raise MetadataError(f"{source}: not an arXiv id: {str(record['id'])[:80]!r}")
    arxiv_id = found[0]
    categories = str(record.get("categories") or "").split()
    versions = [
        (_version_number(str(v.get("version", ""))), _snapshot_date(str(v.get("created", ""))))
        for v in record.get("versions") or []
    ]
    versions = [(n, d) for n, d in versions if n is not None]
    versions.sort(key=lambda v: v[0] or 0)
    published = versions[0][1] if versions else None
    updated = versions[-1][1] if versions else _clean(record.get("update_date"))
    latest = versions[-1][0] if versions else None
    return PaperMetadata(
        title=_clean(record.get("title")),
        authors=_authors_from_snapshot(record),
        abstract=_clean(record.get("abstract")),
        arxiv_id=arxiv_id,
        arxiv_version=latest,
        primary_category=categories[0] if categories else None,
        categories=categories,
        published=published,
        updated=updated,
        url=arxiv_url(arxiv_id, latest),
        source=source,
    )


def _atom_entries(data: bytes, source: str) -> Iterator[PaperMetadata]:
    """PaperMetadata for each <entry> of an arXiv API Atom response, parsed incrementally;
    entries without a valid arXiv id are left out."""
    for _, elem in iterparse(io.BytesIO(data), events=("end",)):
        if elem.tag != f"{_ATOM}entry":
            continue
        found = split_arxiv_id(elem.findtext(f"{_ATOM}id") or "")
        if found is None:
            elem.clear()
            continue
        arxiv_id, version = found
        primary = elem.find(f"{_ARXIV_NS}primary_category")
        categories = [c.get("term", "") for c in elem.findall(f"{_ATOM}category")]
        primary_code = primary.get("term") if primary is not None else None
        if primary_code:
            categories = [primary_code] + [c for c in categories if c != primary_code]
        published = (elem.findtext(f"{_ATOM}published") or "")[:10] or None
        updated = (elem.findtext(f"{_ATOM}updated") or "")[:10] or None
        yield PaperMetadata(
            title=_clean(elem.findtext(f"{_ATOM}title")),
            authors=[
                n
                for a in elem.findall(f"{_ATOM}author")
                if (n := _clean(a.findtext(f"{_ATOM}name")))
            ],
            abstract=_clean(elem.findtext(f"{_ATOM}summary")),
            arxiv_id=arxiv_id,
            arxiv_version=version,
            primary_category=categories[0] if categories else None,
            categories=[c for c in categories if c],
            published=published,
            updated=updated,
            url=arxiv_url(arxiv_id, version),
            source=source,
        )
        elem.clear()


def _cache_dir() -> Path:
    return paths.cache_dir() / "metadata-index"


class MetadataIndex:
    """Lookup of offline arXiv metadata by id. Use `MetadataIndex.open(path)`."""

    def __init__(
        self, path: Path, sha256: str, entries: dict[str, PaperMetadata] | None, db: Path | None
    ):
        self.path = path
        self.sha256 = sha256  # of the file's content: record keys depend on it, not on the path
        self._entries = entries  # Atom: small, held in memory
        self._db = db  # snapshot: id -> byte offset

    @classmethod
    def open(cls, path: str | Path) -> MetadataIndex:
        """Open a snapshot (JSON lines) or Atom XML file, indexing a snapshot on first use.

        Raises:
            MetadataError: the file is missing, unreadable or in neither format.
        """
        path = Path(path)
        try:
            with path.open("rb") as fh:
                head = fh.read(4096).lstrip()
        except OSError as exc:
            raise MetadataError(f"{path}: cannot read metadata file: {exc.strerror}") from None
        if head.startswith(b"\x1f\x8b"):
            raise MetadataError(f"{path}: compressed metadata file: decompress it first (gunzip)")
        if head.startswith(b"<"):
            try:
                data = path.read_bytes()
                entries = {m.arxiv_id or "": m for m in _atom_entries(data, str(path))}
            except OSError as exc:
                raise MetadataError(f"{path}: cannot read metadata file: {exc.strerror}") from None
            except ParseError as exc:
                raise MetadataError(f"{path}: not valid Atom XML: {exc}") from None
            return cls(path, hashlib.sha256(data).hexdigest(), entries, None)
        if head.startswith(b"{"):
            db, sha256 = _snapshot_index(path)
            return cls(path, sha256, None, db)
        raise MetadataError(f"{path}: not an arXiv metadata file (expected JSON lines or Atom XML)")

    def lookup(self, arxiv_id: str) -> PaperMetadata | None:
        """Metadata for an arXiv id (version suffix ignored), or None when the file lacks it."""
        found = split_arxiv_id(arxiv_id)
        if found is None:
            return None
        key = found[0]
        if self._entries is not None:
            return self._entries.get(key)
        assert self._db is not None
        with closing(sqlite3.connect(self._db)) as conn:
            row = conn.execute("SELECT offset FROM ids WHERE id = ?", (key,)).fetchone()
        if row is None:
            return None
        with self.path.open("rb") as fh:
            fh.seek(row[0])
            line = fh.readline()
        try:
            return from_snapshot_record(json.loads(line), str(self.path))
        except (ValueError, KeyError) as exc:
            raise MetadataError(f"{self.path}: bad record for {key}: {exc}") from None


def _snapshot_index(path: Path) -> tuple[Path, str]:
    """The id -> offset index of a snapshot file and the file's sha256, built by streaming it
    once if not cached.

    The index is written to a temporary file of this builder's own and renamed into place, so
    builders racing on one file (two batches, two Ray actors of one node) never see each
    other's half-built index; the last rename wins and every one of them is whole.
    """
    stat = path.stat()
    identity = f"{_INDEX_VERSION}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    key = hashlib.sha256(identity.encode()).hexdigest()
    db = _cache_dir() / f"{key[:24]}.sqlite"
    if db.is_file():
        with closing(sqlite3.connect(db)) as conn:
            row = conn.execute("SELECT sha256 FROM file").fetchone()
        return db, str(row[0])
    db.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=db.parent, prefix=f".{db.stem}.", suffix=".partial")
    os.close(fd)
    try:
        digest = hashlib.sha256()
        with closing(sqlite3.connect(partial)) as conn, conn:
            conn.execute("CREATE TABLE ids (id TEXT PRIMARY KEY, offset INTEGER NOT NULL)")
            conn.execute("CREATE TABLE file (sha256 TEXT NOT NULL)")
            conn.executemany(
                "INSERT OR REPLACE INTO ids VALUES (?, ?)", _snapshot_offsets(path, digest)
            )
            conn.execute("INSERT INTO file VALUES (?)", (digest.hexdigest(),))
        os.replace(partial, db)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return db, digest.hexdigest()


def _snapshot_offsets(path: Path, digest: Any) -> Iterator[tuple[str, int]]:
    """(arXiv id, byte offset) of each line; `digest` is fed every byte on the way."""
    offset = 0
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            digest.update(line)
            if line.strip():
                match = _SNAPSHOT_ID_RE.search(line)
                if match is None:
                    raise MetadataError(f'{path}: line {number} has no arXiv "id" field')
                found = split_arxiv_id(match.group(1).decode(errors="replace"))
                if found is not None:
                    yield found[0], offset
            offset += len(line)


def apply(paper: Paper, index: MetadataIndex | None) -> Paper:
    """The paper with offline metadata (when the file knows its arXiv id) over the PDF's own.

    The PDF's version is kept for the URL (it is the document being digested); dates follow the
    file: 発行日 (published) is v1's date, 最終更新日 (updated) the latest version's.
    """
    pdf = paper.metadata
    if index is None or not pdf.arxiv_id:
        return paper
    found = index.lookup(pdf.arxiv_id)
    if found is None:
        return paper
    version = pdf.arxiv_version or found.arxiv_version
    merged = dataclasses.replace(
        found,
        title=found.title or pdf.title,
        authors=found.authors or pdf.authors,
        abstract=found.abstract or pdf.abstract,
        arxiv_id=pdf.arxiv_id,
        arxiv_version=version,
        primary_category=found.primary_category or pdf.primary_category,
        categories=found.categories or pdf.categories,
        published=found.published or pdf.published,
        published_from_id=not found.published and pdf.published_from_id,
        updated=found.updated or pdf.updated,
        url=arxiv_url(pdf.arxiv_id, version),
    )
    return dataclasses.replace(paper, metadata=merged)
