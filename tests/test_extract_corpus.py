"""Extraction accuracy on the real arXiv PDFs in ../shared/corpus (skipped where it is absent).

The thresholds are the issue's targets; `make eval-extract` prints the per-paper table.
"""

from __future__ import annotations

import csv
import importlib.util

import pytest
from conftest import CORPUS, REPO_ROOT, requires_corpus

from localdigest import extract
from localdigest.errors import PDFError

pytestmark = [requires_corpus, pytest.mark.corpus]


def _eval_module():
    spec = importlib.util.spec_from_file_location(
        "eval_extract", REPO_ROOT / "scripts" / "eval_extract.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results():
    """(manifest row, Paper) for every corpus paper, extracted once."""
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["kind"] == "paper"]
    return [(row, extract.paper(CORPUS / row["file"])) for row in rows]


def test_titles(results) -> None:
    ev = _eval_module()
    correct = sum(
        ev.normalised(p.metadata.title or "") == ev.normalised(r["title"]) for r, p in results
    )
    assert correct >= len(results) - 1


def test_arxiv_ids_on_every_stamped_paper(results) -> None:
    ev = _eval_module()
    for row, paper in results:
        want = ev.expected_id(row["arxiv_id"])
        if want[0] is not None:
            assert (paper.metadata.arxiv_id, paper.metadata.arxiv_version) == want, row["file"]
            assert paper.metadata.url == f"http://arxiv.org/pdf/{want[0]}v{want[1]}"


def test_abstracts(results) -> None:
    ev = _eval_module()
    found = sum(ev.abstract_ok(p.metadata.abstract) for _, p in results)
    assert found >= len(results) - 1


def test_no_abstract_ends_in_a_footnote_mark(results) -> None:
    ends = {r["file"]: (p.metadata.abstract or "")[-20:] for r, p in results}
    assert not {f: e for f, e in ends.items() if e[-1:].isdigit()}


def test_references_not_in_body(results) -> None:
    ev = _eval_module()
    assert sum(ev.references_ok(p) for _, p in results) >= len(results) - 1


def test_pages(results) -> None:
    """Speed is measured by `make eval-extract`, not asserted: shared machines are noisy (this
    test failed under a concurrent model run at 4x the usual time)."""
    for row, paper in results:
        assert paper.page_count == int(row["pages"]), row["file"]
        assert all(b.page >= 1 for s in paper.sections for b in s.blocks)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("zero-bytes.pdf", "empty file"),
        ("not-a-pdf-plaintext.pdf", "not a PDF"),
        ("zero-pages.pdf", "no pages"),
        ("encrypted-user-password_pw-test.pdf", "encrypted: pass --password"),
        ("scanned-image-only-no-text-layer-8p.pdf", "no text layer"),
    ],
)
def test_bad_corpus_files(name: str, reason: str) -> None:
    with pytest.raises(PDFError, match=reason):
        extract.paper(CORPUS / "bad" / name)


def test_damaged_file_is_salvaged_with_warning() -> None:
    paper = extract.paper(CORPUS / "bad" / "corrupted-zlib-stream.pdf")
    assert "Beautiful is better than ugly" in " ".join(s.text for s in paper.sections)
    assert any("damaged" in w for w in paper.warnings)


def test_long_document_is_bounded() -> None:
    paper = extract.paper(CORPUS / "bad" / "huge-page-count-619p.pdf", max_pages=40)
    assert (paper.page_count, paper.pages_read) == (619, 40)
    assert any("first 40 of 619" in w for w in paper.warnings)


def test_encrypted_corpus_file_opens_with_password() -> None:
    assert (
        extract.paper(
            CORPUS / "bad" / "encrypted-user-password_pw-test.pdf", password="test"
        ).page_count
        == 4
    )
