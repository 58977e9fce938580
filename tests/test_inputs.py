"""Collecting batch inputs, sharding them, and filtering them by metadata."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest

from localdigest.errors import UsageError
from localdigest.inputs import (
    collect_inputs,
    filter_by_metadata,
    index_lookup,
    parse_date,
    parse_shard,
    shard,
    shard_of,
)
from localdigest.paper import PaperMetadata


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """papers/{a.pdf, B.PDF, notes.txt, sub/c.pdf, .hidden/d.pdf, ._e.pdf}, cwd = tmp_path."""
    for name in ["a.pdf", "B.PDF", "notes.md", "sub/c.pdf", ".hidden/d.pdf", "._e.pdf"]:
        path = tmp_path / "papers" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"%PDF-1.7 " + name.encode())
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def names(paths: list[Path]) -> list[str]:
    return [p.as_posix() for p in paths]


def test_directory_is_searched_recursively_for_pdfs_in_any_case(tree: Path) -> None:
    found = collect_inputs(["papers"])
    assert names(found.paths) == ["papers/B.PDF", "papers/a.pdf", "papers/sub/c.pdf"]
    assert found.problems == []


def test_files_and_globs_keep_order_and_are_deduplicated(tree: Path) -> None:
    found = collect_inputs(["papers/sub/c.pdf", "papers/*.pdf", "papers", "./papers/a.pdf"])
    assert names(found.paths) == ["papers/sub/c.pdf", "papers/a.pdf", "papers/B.PDF"]


def test_recursive_glob(tree: Path) -> None:
    assert names(collect_inputs(["papers/**/c.pdf"]).paths) == ["papers/sub/c.pdf"]


def test_an_explicit_file_is_taken_whatever_its_extension(tree: Path) -> None:
    assert names(collect_inputs(["papers/notes.md"]).paths) == ["papers/notes.md"]


def test_list_files_by_at_sign_or_suffix(tree: Path) -> None:
    (tree / "list.txt").write_text("# archive\npapers/a.pdf\n\n  papers/sub  \n")
    (tree / "other").write_text("papers/B.PDF\n")
    assert names(collect_inputs(["list.txt"]).paths) == ["papers/a.pdf", "papers/sub/c.pdf"]
    assert names(collect_inputs(["@other"]).paths) == ["papers/B.PDF"]


def test_dash_reads_paths_from_stdin(tree: Path) -> None:
    found = collect_inputs(
        ["-", "papers/a.pdf"], stdin=io.StringIO("papers/sub/c.pdf\npapers/a.pdf\n")
    )
    assert names(found.paths) == ["papers/sub/c.pdf", "papers/a.pdf"]


def test_missing_inputs_are_reported_and_the_rest_go_on(tree: Path) -> None:
    (tree / "list.txt").write_text("papers/a.pdf\nmissing.pdf\n")
    found = collect_inputs(
        ["nope.pdf", "list.txt", "@gone.lst", "nothing/*.pdf", "empty", "papers/sub"]
    )
    assert names(found.paths) == ["papers/a.pdf", "papers/sub/c.pdf"]
    assert [str(p) for p in found.problems] == [
        "nope.pdf: no such file or directory",
        "list.txt:2: missing.pdf: no such file or directory",
        "@gone.lst: cannot read list file: No such file or directory",
        "nothing/*.pdf: no files match this pattern",
        "empty: directory contains no PDF files",
    ]


@pytest.mark.parametrize(
    ("text", "expected"), [("1/1", (1, 1)), ("2/8", (2, 8)), (" 8 / 8 ", (8, 8))]
)
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "2", "a/b", "-1/4", "1/4/2"])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        parse_shard(text)


def test_shards_partition_the_inputs_by_file_name() -> None:
    paths = [Path(f"/archive/{i // 100}/2401.{i:05d}.pdf") for i in range(300)]
    parts = [shard(paths, i, 3) for i in (1, 2, 3)]
    assert sorted(p for part in parts for p in part) == sorted(paths)
    assert all(60 < len(part) < 140 for part in parts)  # roughly even
    assert shard(paths, 2, 3) == parts[1]  # deterministic
    # Another mount point, same names: same shards.
    assert shard_of(Path("/mnt/x/2401.00007.pdf"), 3) == shard_of(paths[7], 3)
    assert shard(paths, 1, 1) == paths


def meta(published: str | None, *categories: str) -> PaperMetadata:
    return PaperMetadata(
        published=published,
        primary_category=categories[0] if categories else None,
        categories=list(categories),
    )


CATALOG = {
    "a.pdf": meta("2024-05-01", "cs.CL", "cs.LG"),
    "b.pdf": meta("2024-05-31", "stat.ML", "cs.LG"),
    "c.pdf": meta("2024-06-01", "hep-th"),
    "d.pdf": meta(None, "cs.CL"),
}
PATHS = [Path(n) for n in ["a.pdf", "b.pdf", "c.pdf", "d.pdf", "unknown.pdf"]]


def lookup(path: Path) -> PaperMetadata | None:
    return CATALOG.get(path.name)


@pytest.mark.parametrize(
    ("since", "until", "categories", "kept"),
    [
        ("2024-05-01", "2024-05-31", [], ["a.pdf", "b.pdf"]),
        ("2024-05-31", None, [], ["b.pdf", "c.pdf"]),
        (None, None, ["cs.LG"], ["a.pdf", "b.pdf"]),
        (None, None, ["cs"], ["a.pdf", "b.pdf", "d.pdf"]),
        (None, None, ["hep-th", "cs.CL"], ["a.pdf", "c.pdf", "d.pdf"]),
        ("2024-05-02", None, ["cs.LG"], ["b.pdf"]),
    ],
)
def test_filter_by_metadata(
    since: str | None, until: str | None, categories: list[str], kept: list[str]
) -> None:
    result = filter_by_metadata(
        PATHS,
        lookup,
        since=parse_date(since) if since else None,
        until=parse_date(until, "--until") if until else None,
        categories=categories,
    )
    assert names(result.paths) == kept
    assert [p.spec for p in result.problems] == (["d.pdf"] if since or until else []) + [
        "unknown.pdf"
    ]


def test_parse_date_names_the_option() -> None:
    assert parse_date("2024-05-31") == date(2024, 5, 31)
    with pytest.raises(UsageError, match="--until must be a date like"):
        parse_date("31/05/2024", "--until")


def test_index_lookup_uses_the_arxiv_id_in_the_file_name() -> None:
    class Index:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def lookup(self, arxiv_id: str) -> PaperMetadata | None:
            self.asked.append(arxiv_id)
            return meta("2017-06-12", "cs.CL") if arxiv_id == "1706.03762" else None

    index = Index()
    find = index_lookup(index)
    assert find(Path("x/1706.03762v5.pdf")) == meta("2017-06-12", "cs.CL")
    assert find(Path("x/2401.00001.pdf")) is None
    assert find(Path("x/paper.pdf")) is None
    assert index.asked == ["1706.03762", "2401.00001"]
