"""Offline metadata files and merging them into papers."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localdigest import metadata
from localdigest.errors import MetadataError
from localdigest.paper import Paper, PaperMetadata

SNAPSHOT_RECORD = {
    "id": "1706.03762",
    "title": "Attention Is All\n  You Need",
    "authors": "Ashish Vaswani, Noam Shazeer and Niki Parmar",
    "authors_parsed": [["Vaswani", "Ashish", ""], ["Shazeer", "Noam", ""], ["Parmar", "Niki", ""]],
    "abstract": "  The dominant sequence transduction models\nare complex.\n",
    "categories": "cs.CL cs.LG",
    "versions": [
        {"version": "v1", "created": "Mon, 12 Jun 2017 17:57:34 GMT"},
        {"version": "v5", "created": "Wed, 6 Dec 2017 03:30:32 GMT"},
    ],
    "update_date": "2023-08-02",
}


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "snapshot.json"
    other = dict(SNAPSHOT_RECORD, id="0704.0001", title="Other")
    path.write_text(
        "\n".join(json.dumps(r) for r in [other, SNAPSHOT_RECORD]) + "\n", encoding="utf-8"
    )
    return path


def test_snapshot_lookup(snapshot: Path) -> None:
    index = metadata.MetadataIndex.open(snapshot)
    found = index.lookup("1706.03762v3")
    assert found is not None
    assert found.title == "Attention Is All You Need"
    assert found.authors == ["Ashish Vaswani", "Noam Shazeer", "Niki Parmar"]
    assert found.abstract == "The dominant sequence transduction models are complex."
    assert (found.primary_category, found.categories) == ("cs.CL", ["cs.CL", "cs.LG"])
    assert (found.published, found.updated) == ("2017-06-12", "2017-12-06")
    assert found.source == str(snapshot)
    assert index.lookup("9999.99999") is None


def test_snapshot_index_is_built_once_and_rebuilt_when_file_changes(
    snapshot: Path, isolated_home: Path
) -> None:
    metadata.MetadataIndex.open(snapshot)
    indexes = list((isolated_home / ".cache" / "localdigest" / "metadata-index").glob("*.sqlite"))
    assert len(indexes) == 1
    with snapshot.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(dict(SNAPSHOT_RECORD, id="2101.00001", title="New")) + "\n")
    found = metadata.MetadataIndex.open(snapshot).lookup("2101.00001")
    assert found is not None and found.title == "New"


ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <entry>
    <id>http://arxiv.org/abs/1412.6980v9</id>
    <updated>2017-01-30T01:27:54Z</updated>
    <published>2014-12-22T13:54:29Z</published>
    <title>Adam: A Method for
      Stochastic Optimization</title>
    <summary>  We introduce Adam.
    </summary>
    <author><name>Diederik P. Kingma</name></author>
    <author><name>Jimmy Ba</name></author>
    <arxiv:primary_category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
    <category term="math.OC" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
</feed>
"""


def test_atom_lookup(tmp_path: Path) -> None:
    path = tmp_path / "query.xml"
    path.write_text(ATOM, encoding="utf-8")
    found = metadata.MetadataIndex.open(path).lookup("1412.6980")
    assert found is not None
    assert found.title == "Adam: A Method for Stochastic Optimization"
    assert found.authors == ["Diederik P. Kingma", "Jimmy Ba"]
    assert found.categories == ["cs.LG", "math.OC"]
    assert (found.published, found.updated, found.arxiv_version) == ("2014-12-22", "2017-01-30", 9)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an arXiv metadata file"),
        (b"id,title\n", "not an arXiv metadata file"),
        (b"<feed><entry>", "not valid Atom XML"),
        (b'{"title": "no id"}\n', 'no arXiv "id"'),
        (b"\x1f\x8b\x08\x00", "decompress"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "meta.dat"
    path.write_bytes(content)
    with pytest.raises(MetadataError, match=message) as info:
        metadata.MetadataIndex.open(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="cannot read metadata file"):
        metadata.MetadataIndex.open(tmp_path / "absent.json")


def _pdf_paper(**meta: object) -> Paper:
    return Paper("p.pdf", "0" * 64, 10, PaperMetadata(**meta))  # type: ignore[arg-type]


def test_apply_merges_file_over_pdf(snapshot: Path) -> None:
    paper = _pdf_paper(title="ATTENTION", arxiv_id="1706.03762", arxiv_version=3)
    merged = metadata.apply(paper, metadata.MetadataIndex.open(snapshot)).metadata
    assert merged.title == "Attention Is All You Need"
    assert merged.arxiv_version == 3  # the PDF being digested
    assert merged.url == "http://arxiv.org/pdf/1706.03762v3"
    assert (merged.published, merged.updated) == ("2017-06-12", "2017-12-06")
    assert merged.source == str(snapshot)


def test_apply_replaces_the_month_of_the_id_with_the_files_v1_date(snapshot: Path) -> None:
    paper = _pdf_paper(arxiv_id="1706.03762", published="2017-06", published_from_id=True)
    merged = metadata.apply(paper, metadata.MetadataIndex.open(snapshot)).metadata
    assert (merged.published, merged.published_from_id) == ("2017-06-12", False)


def test_apply_without_match_keeps_pdf_metadata(snapshot: Path) -> None:
    index = metadata.MetadataIndex.open(snapshot)
    for paper in (_pdf_paper(title="T"), _pdf_paper(title="T", arxiv_id="1111.11111")):
        assert metadata.apply(paper, index) == paper
    assert metadata.apply(_pdf_paper(title="T"), None).metadata.source == "pdf"


def test_a_crafted_atom_id_is_left_out(tmp_path: Path) -> None:
    """Issue 16: an entry whose id is not an arXiv id never reaches a digest's links."""
    crafted_id = "x&gt;&lt;img src=x onerror=alert(1)&gt;"  # x><img ...> once parsed
    crafted = ATOM.replace("1412.6980v9</id>", f"{crafted_id}</id>")
    path = tmp_path / "query.xml"
    path.write_text(crafted.replace("</feed>", ATOM.split("<feed", 1)[1].split(">", 1)[1]))
    index = metadata.MetadataIndex.open(path)
    assert index.lookup("1412.6980") is not None  # the well-formed entry
    assert index.lookup("x><img src=x onerror=alert(1)>") is None


def test_the_index_knows_the_file_by_content(snapshot: Path, tmp_path: Path) -> None:
    first = metadata.MetadataIndex.open(snapshot).sha256
    assert first == hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert metadata.MetadataIndex.open(snapshot).sha256 == first  # read back from the index
    moved = tmp_path / "elsewhere.json"
    moved.write_bytes(snapshot.read_bytes())
    assert metadata.MetadataIndex.open(moved).sha256 == first


def test_concurrent_index_builders_each_get_a_whole_index(tmp_path: Path) -> None:
    """Issue 16: two processes (or Ray actors of one node) indexing the same snapshot at once."""
    path = tmp_path / "snapshot.json"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(200_000):
            fh.write(json.dumps({"id": f"2101.{i % 100_000:05d}", "title": f"T{i}"}) + "\n")
    code = (
        "import sys; from localdigest import metadata\n"
        "index = metadata.MetadataIndex.open(sys.argv[1])\n"
        "assert index.lookup('2101.99999').title == 'T199999', 'incomplete index'\n"
    )
    cache = tmp_path / "home" / ".cache" / "localdigest" / "metadata-index"

    def build() -> subprocess.Popen[str]:
        command = [sys.executable, "-c", code, str(path)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = build()
    deadline = time.monotonic() + 60
    while not (cache.is_dir() and list(cache.glob("*partial"))):  # it is writing its index
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.005)
    second = build()
    results = [b.communicate(timeout=300) for b in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [err for _, err in results]
    assert [p.suffix for p in cache.iterdir()] == [".sqlite"]  # no partial file left behind
