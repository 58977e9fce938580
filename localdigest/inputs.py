"""Which PDFs a batch works on: paths, directories, globs, list files and stdin, then shard/filter.

Rules (the `digest` command documents the same):

- `-` reads paths from stdin, one per line.
- `@FILE`, or any argument whose name ends in `.txt` or `.lst`, is a list file: one path per
  line. Relative lines are relative to the working directory (as with `tar -T` and `xargs`), so
  `find papers -name '*.pdf' > list.txt` works unchanged. Blank lines and `#` comments are ignored.
- A directory is searched recursively for `*.pdf` (any case); hidden files and directories
  (`.name`) are left out, symlinked directories are not followed.
- A path that does not exist but contains `*`, `?` or `[` is a glob (`**` recurses).
- Any other existing file is taken as given, whatever its extension.

Paths are deduplicated by their resolved location, first occurrence wins, order is stable.
A missing path is reported and the others go on.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TextIO

from localdigest.arxiv import arxiv_id_from_name
from localdigest.errors import UsageError
from localdigest.paper import PaperMetadata

log = logging.getLogger("localdigest")

LIST_SUFFIXES = (".txt", ".lst")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass
class InputProblem:
    """An input argument (or list line) that gave no PDF, and why."""

    spec: str
    reason: str

    def __str__(self) -> str:
        return f"{self.spec}: {self.reason}"


@dataclass
class InputSet:
    paths: list[Path] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)


def collect_inputs(specs: Iterable[str], *, stdin: TextIO | None = None) -> InputSet:
    """Expand command-line inputs into a deduplicated, stably ordered list of PDF paths.

    Args:
        specs: the command-line arguments (see the module docstring for the rules).
        stdin: where `-` reads paths from (default sys.stdin).

    Returns:
        The paths found and, separately, one problem per argument that gave nothing.
    """
    result = InputSet()
    seen: set[str] = set()

    def add(path: Path) -> None:
        identity = os.path.realpath(path)
        if identity not in seen:
            seen.add(identity)
            result.paths.append(path)

    for spec in specs:
        if spec == "-":
            lines = _list_lines((stdin or sys.stdin).read())
            _expand_each(lines, "stdin", add, result.problems)
        elif spec.startswith("@") or (
            spec.lower().endswith(LIST_SUFFIXES) and Path(spec).is_file()
        ):
            list_path = Path(spec[1:] if spec.startswith("@") else spec)
            try:
                text = list_path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                result.problems.append(InputProblem(spec, f"cannot read list file: {reason}"))
                continue
            _expand_each(_list_lines(text), str(list_path), add, result.problems)
        else:
            _expand(spec, spec, add, result.problems)
    return result


def _list_lines(text: str) -> list[str]:
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


def _expand_each(
    lines: list[str], origin: str, add: Callable[[Path], None], problems: list[InputProblem]
) -> None:
    for number, line in enumerate(lines, 1):
        _expand(line, f"{origin}:{number}: {line}", add, problems)


def _expand(
    spec: str, label: str, add: Callable[[Path], None], problems: list[InputProblem]
) -> None:
    path = Path(spec)
    if path.is_dir():
        found = _pdfs_under(path)
        if not found:
            problems.append(InputProblem(label, "directory contains no PDF files"))
        for pdf in found:
            add(pdf)
    elif path.is_file():
        add(path)
    elif _GLOB_CHARS.search(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        before = len(problems)
        count = 0
        for match in matches:
            match_path = Path(match)
            if match_path.is_dir():
                for pdf in _pdfs_under(match_path):
                    add(pdf)
                    count += 1
            elif match_path.is_file():
                add(match_path)
                count += 1
        if not count and len(problems) == before:
            problems.append(InputProblem(label, "no files match this pattern"))
    elif path.exists():
        problems.append(InputProblem(label, "not a regular file or directory"))
    else:
        problems.append(InputProblem(label, "no such file or directory"))


def _pdfs_under(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(root, name)
            for name in sorted(files)
            if name.lower().endswith(".pdf") and not name.startswith(".")
        )
    return found


def parse_shard(text: str) -> tuple[int, int]:
    """`"2/8"` -> (2, 8). Raises UsageError unless 1 <= I <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"--shard must look like I/N (e.g. 2/8), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text}: I must be between 1 and N (N >= 1)")
    return index, count


def shard_of(path: Path, count: int) -> int:
    """The 1-based shard a file belongs to, from its file name alone.

    The file name (not the full path, not the content) decides, so machines that mount the
    archive at different places agree without reading a byte. Files with equal names land in
    the same shard, which is harmless: records are keyed by content, not by name.
    """
    digest = hashlib.sha1(path.name.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def shard(paths: Iterable[Path], index: int, count: int) -> list[Path]:
    """The deterministic 1/count of `paths` that shard `index` (1-based) processes."""
    return [p for p in paths if shard_of(p, count) == index]


def parse_date(text: str, option: str = "--since") -> date:
    """`YYYY-MM-DD` for --since/--until. Raises UsageError naming the option."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} must be a date like 2024-05-31, got {text!r}") from None


MetadataLookup = Callable[[Path], "PaperMetadata | None"]


def index_lookup(index: object) -> MetadataLookup:
    """A lookup for filter_by_metadata backed by a metadata index (`index.lookup(arxiv_id)`).

    The arXiv id comes from the file name: opening hundreds of thousands of PDFs just to
    filter them would cost more than the filter saves.
    """
    lookup_id: Callable[[str], PaperMetadata | None] = index.lookup  # type: ignore[attr-defined]

    def lookup(path: Path) -> PaperMetadata | None:
        found = arxiv_id_from_name(path.name)
        return lookup_id(found[0]) if found else None

    return lookup


def filter_by_metadata(
    paths: Iterable[Path],
    lookup: MetadataLookup,
    *,
    since: date | None = None,
    until: date | None = None,
    categories: Iterable[str] = (),
) -> InputSet:
    """Keep papers first published (v1) within [since, until] and in any of `categories`.

    A category without a dot names a whole archive: `cs` matches `cs.CL`. A paper without
    metadata (or without a date when a date bound is given) is left out and reported, since
    we cannot tell whether it matches.

    Returns:
        The kept paths, and one problem per paper left out for lack of metadata.
    """
    wanted = [c.strip() for c in categories if c.strip()]
    result = InputSet()
    for path in paths:
        meta = lookup(path)
        if meta is None:
            result.problems.append(InputProblem(str(path), "no metadata found: left out by filter"))
            continue
        if since or until:
            if not meta.published:
                result.problems.append(
                    InputProblem(str(path), "no publication date in metadata: left out by filter")
                )
                continue
            published = date.fromisoformat(meta.published[:10])
            if (since and published < since) or (until and published > until):
                continue
        if wanted and not _in_categories(meta, wanted):
            continue
        result.paths.append(path)
    return result


def _in_categories(meta: PaperMetadata, wanted: list[str]) -> bool:
    have = set(meta.categories) | ({meta.primary_category} if meta.primary_category else set())
    return any(c == w or c.startswith(w + ".") for c in have for w in wanted)


@dataclass(frozen=True)
class Selection:
    """Which of the inputs found a run takes (`digest`'s --shard, --since, --until, --category
    and --limit); the dates and categories need a metadata file."""

    shard: str | None = None
    since: str | None = None
    until: str | None = None
    categories: tuple[str, ...] = ()
    limit: int | None = None


def select(
    specs: Iterable[str],
    selection: Selection,
    metadata_file: str | Path | None = None,
    *,
    stdin: TextIO | None = None,
) -> list[Path]:
    """The PDFs a run works on: the inputs found, this shard of them, those the metadata
    filters keep, at most `limit`; inputs that could not be read are logged.

    Raises:
        UsageError: a bad shard or date, filters without a metadata file, or no PDF left.
        MetadataError: the metadata file cannot be read.
    """
    found = collect_inputs(specs, stdin=stdin)
    for problem in found.problems:
        log.error("localdigest: %s", problem)
    paths = found.paths
    if selection.shard:
        paths = shard(paths, *parse_shard(selection.shard))
    if selection.since or selection.until or selection.categories:
        paths = _filtered(paths, selection, metadata_file)
    paths = paths[: selection.limit] if selection.limit else paths
    if not paths:
        raise UsageError("no PDF inputs to process")
    return paths


def _filtered(
    paths: list[Path], selection: Selection, metadata_file: str | Path | None
) -> list[Path]:
    if not metadata_file:
        raise UsageError("--since/--until/--category need --metadata FILE")
    from localdigest.metadata import MetadataIndex

    since, until = selection.since, selection.until
    filtered = filter_by_metadata(
        paths,
        index_lookup(MetadataIndex.open(metadata_file)),
        since=parse_date(since, "--since") if since else None,
        until=parse_date(until, "--until") if until else None,
        categories=selection.categories,
    )
    for problem in filtered.problems:
        log.info("%s", problem)
    return filtered.paths
