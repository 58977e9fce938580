"""Extraction on PDFs built with pymupdf: layout, structure, metadata, bad input, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest
from click.testing import CliRunner
from pdfs import ABSTRACT_LINES, COLUMN_LINES_1, LEFT, fixture_paper_pdf, write_lines

from localdigest import extract
from localdigest.cli import cli
from localdigest.errors import PDFError
from localdigest.extract import layout
from localdigest.extract.layout import join_hyphenated
from localdigest.paper import ABSTRACT, APPENDIX, BODY, REFERENCES


@pytest.fixture
def paper_pdf(tmp_path: Path) -> Path:
    return fixture_paper_pdf(tmp_path / "fixture.pdf")


def test_title_authors_and_stamp(paper_pdf: Path) -> None:
    paper = extract.paper(paper_pdf)
    meta = paper.metadata
    assert meta.title == "A Study of Fixture Papers"
    assert meta.authors == ["Alice Smith", "Bob Jones"]
    assert (meta.arxiv_id, meta.arxiv_version, meta.primary_category) == ("2101.00001", 2, "cs.CL")
    assert meta.url == "http://arxiv.org/pdf/2101.00001v2"
    assert meta.updated == "2021-01-05"
    # the stamp dates v2, not v1: 発行日 is the month the id encodes, and says so
    assert (meta.published, meta.published_from_id) == ("2021-01", True)
    assert paper.page_count == 3
    assert len(paper.sha256) == 64


def test_abstract_and_sections(paper_pdf: Path) -> None:
    paper = extract.paper(paper_pdf)
    assert paper.metadata.abstract == " ".join(ABSTRACT_LINES)
    kinds = [(s.number, s.title, s.kind) for s in paper.sections if s.kind != "front"]
    assert kinds == [
        (None, "Abstract", ABSTRACT),
        ("1", "Introduction", BODY),
        ("2", "Method", BODY),
        ("3", "Results", BODY),
        (None, "References", REFERENCES),
        ("A", "Proofs", APPENDIX),
    ]
    assert paper.sections_of(REFERENCES)[0].pages == [2]


def test_columns_hyphens_headers_and_stamp_removed(paper_pdf: Path) -> None:
    paper = extract.paper(paper_pdf)
    body = paper.body_text
    intro = paper.sections_of(BODY)[0].text
    assert intro.startswith("Retrieval systems often pair a query encoder with a document encoder.")
    assert "The dual-encoder design" in intro  # compound kept across the line break
    assert "Left column ends here." in intro
    assert "cross-attention model" in paper.sections_of(BODY)[1].text
    assert "Right column ends here." in paper.sections_of(BODY)[1].text
    assert "Proceedings of the Fixture" not in body
    assert "arXiv:2101" not in body
    assert "Dense retrieval" not in body
    assert paper.sections_of(BODY)[2].blocks[0].page == 2


def test_hyphenation_rules() -> None:
    from collections import Counter

    vocab = Counter({"encoder": 3, "dual-encoder": 2, "dual": 1})
    assert join_hyphenated("a query encod-", "er here", vocab) == "a query encoder here"
    assert join_hyphenated("the dual-", "encoder", vocab) == "the dual-encoder"
    assert join_hyphenated("Table-", "Text", Counter()) == "Table-Text"
    assert join_hyphenated("multi-", "ple", Counter()) == "multiple"


def test_max_pages_bounds_work(paper_pdf: Path) -> None:
    paper = extract.paper(paper_pdf, max_pages=1)
    assert paper.pages_read == 1
    assert paper.page_count == 3
    assert any("first 1 of 3 pages" in w for w in paper.warnings)


def test_paper_from_bytes_matches_path(paper_pdf: Path) -> None:
    from_bytes = extract.paper_from_bytes(paper_pdf.read_bytes(), "x.pdf")
    assert from_bytes.path == "x.pdf"
    assert from_bytes.sections == extract.paper(paper_pdf).sections


def test_roundtrip_through_dict(paper_pdf: Path) -> None:
    from localdigest.paper import Paper

    paper = extract.paper(paper_pdf)
    assert Paper.from_dict(json.loads(json.dumps(paper.to_dict()))) == paper


def _encrypted(path: Path) -> Path:
    doc = pymupdf.open()
    write_lines(doc.new_page(), 72, 72, ["secret text for a test of passwords"])
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="owner")
    return path


def _scanned(path: Path) -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 40), False)
    pix.clear_with(200)
    page.insert_image(page.rect, pixmap=pix)
    doc.save(path)
    return path


_ZERO_PAGES = (
    b"%PDF-1.3\n1 0 obj\n<< /Pages 2 0 R /Type /Catalog >>\nendobj\n"
    b"2 0 obj\n<< /Count 0 /Kids [ ] /Type /Pages >>\nendobj\n"
    b"trailer << /Root 1 0 R /Size 3 >>\n%%EOF\n"
)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b"") or p, "empty file"),
        (lambda p: p.write_text("This is not a PDF at all.") or p, "not a PDF"),
        (lambda p: p.write_bytes(_ZERO_PAGES) or p, "no pages"),
        (_encrypted, "encrypted: pass --password"),
        (_scanned, "no text layer (scanned?); OCR is not supported"),
        (lambda p: p.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 10) or p, "PDF"),
    ],
)
def test_bad_input_classes(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "bad.pdf"
    make(path)
    with pytest.raises(PDFError) as info:
        extract.paper(path)
    assert reason in str(info.value)
    assert str(path) in str(info.value)


def test_encrypted_with_password(tmp_path: Path) -> None:
    path = _encrypted(tmp_path / "locked.pdf")
    assert (
        extract.paper(path, password="pw").metadata.title == "secret text for a test of passwords"
    )
    with pytest.raises(PDFError, match="wrong password"):
        extract.paper(path, password="nope")


def test_cli_text_and_json(paper_pdf: Path) -> None:
    result = CliRunner().invoke(cli, ["extract", str(paper_pdf)])
    assert result.exit_code == 0, result.output
    assert "title:     A Study of Fixture Papers" in result.output
    assert "2101.00001v2 [cs.CL: Computation and Language]" in result.output
    assert "[references] References" in result.output
    result = CliRunner().invoke(cli, ["extract", "--json", str(paper_pdf)])
    assert result.exit_code == 0
    assert json.loads(result.output)["metadata"]["arxiv_id"] == "2101.00001"


def test_cli_bad_file_among_good(paper_pdf: Path, tmp_path: Path) -> None:
    bad = tmp_path / "empty.pdf"
    bad.write_bytes(b"")
    result = CliRunner().invoke(cli, ["extract", str(bad), str(paper_pdf)])
    assert result.exit_code == 1
    assert f"localdigest: error: {bad}: empty file (0 bytes)" in result.stderr
    assert "A Study of Fixture Papers" in result.stdout


def test_text_layer_over_a_scanned_page_is_read(paper_pdf: Path, tmp_path: Path) -> None:
    """An OCR text layer lies over an image of the whole page (Acrobat Capture): the image is
    the scan, not a figure, so the text on it is the paper's."""
    doc = pymupdf.open(paper_pdf)
    scan = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 40), False)
    scan.clear_with(255)
    for page in doc:
        page.insert_image(page.rect, pixmap=scan, overlay=False, keep_proportion=False)
    doc.save(tmp_path / "scanned-with-text.pdf")
    scanned = extract.paper(tmp_path / "scanned-with-text.pdf")
    assert scanned.body_text == extract.paper(paper_pdf).body_text
    assert "The dual-encoder wins on two of three benchmarks." in scanned.body_text


def test_a_run_in_abstract_ends_where_a_smaller_footnote_begins(tmp_path: Path) -> None:
    """Springer's layout: "Abstract In recent years ..." with no heading line, and the authors'
    e-mail footnote set smaller right under it, before the keywords."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    write_lines(page, 150, 90, ["A Survey of Fixture Papers"], size=18, font="hebo")
    write_lines(page, LEFT, 125, ["Alice Smith · Bob Jones"], size=11)
    lines = ["Abstract " + ABSTRACT_LINES[0], *ABSTRACT_LINES[1:]]
    write_lines(page, LEFT, 170, lines)
    footnote = ["Alice Smith E-mail: alice@example.org", "1 Fixture University, Exampletown."]
    write_lines(page, LEFT, 220, footnote, size=8)
    write_lines(page, LEFT, 260, ["Keywords Fixtures · Parsing"])
    write_lines(page, LEFT, 290, ["1 Introduction"], size=12, font="hebo")
    write_lines(page, LEFT, 310, COLUMN_LINES_1)
    doc.save(tmp_path / "springer.pdf")
    paper = extract.paper(tmp_path / "springer.pdf")
    assert paper.metadata.abstract == " ".join(ABSTRACT_LINES)


@pytest.mark.parametrize(
    ("font", "bold"),
    [("CMBX10", True), ("ABCDEF+CMBX12", True), ("CMB10", True), ("CMSSBX10", True),
     ("CMR10", False), ("ABCDEF+CMTI10", False), ("CMBRIGHT", False)],
)  # fmt: skip
def test_tex_bold_faces_are_bold_without_the_flag(font: str, bold: bool) -> None:
    """LaTeX's Computer Modern bold faces carry no bold flag; a heading set in them is bold."""
    assert layout.is_bold({"font": font, "flags": 0}) == bold
