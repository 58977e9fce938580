"""Fixture PDFs built with pymupdf that look like conference papers to the extractor."""

from __future__ import annotations

from pathlib import Path

import pymupdf

LEFT, RIGHT = 60, 320  # column x positions on a 612 pt wide page
COLUMN_LINES_1 = [
    "Retrieval systems often pair a query encod-",
    "er with a document encoder. The dual-",
    "encoder design is fast because documents",
    "are encoded once.",
]
COLUMN_LINES_2 = [
    "A dual-encoder scores pairs with a dot",
    "product. We compare it with a cross-",
    "attention model and a sparse baseline on",
    "three retrieval benchmarks.",
]
ABSTRACT_LINES = [
    "We study fixture papers built for tests. They have two columns,",
    "running headers and footers, a margin stamp and a short reference",
    "list, which is what real conference papers look like to a parser.",
]


def write_lines(page: pymupdf.Page, x: float, y: float, lines: list[str], size=10, font="helv"):
    for i, line in enumerate(lines):
        page.insert_text((x, y + i * size * 1.2), line, fontsize=size, fontname=font)


def fixture_paper_pdf(path: Path, pages: int = 3, stamp: bool = True) -> Path:
    """Two columns, running header and footer, arXiv margin stamp, references, an appendix."""
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=612, height=792)
        write_lines(page, 200, 40, ["Proceedings of the Fixture Conference 2021"], size=8)
        write_lines(page, 300, 770, [str(number)], size=8)
        if number == 1:
            write_lines(page, 150, 90, ["A Study of Fixture Papers"], size=18, font="hebo")
            write_lines(page, 200, 125, ["Alice Smith, Bob Jones"], size=11)
            write_lines(page, 270, 165, ["Abstract"], size=12, font="hebo")
            write_lines(page, LEFT, 185, ABSTRACT_LINES)
            if stamp:
                page.insert_text(
                    (30, 560), "arXiv:2101.00001v2  [cs.CL]  5 Jan 2021", fontsize=20, rotate=90
                )
            write_lines(page, LEFT, 250, ["1 Introduction"], size=12, font="hebo")
            write_lines(page, LEFT, 270, COLUMN_LINES_1)
            write_lines(page, RIGHT, 250, ["2 Method"], size=12, font="hebo")
            write_lines(page, RIGHT, 270, COLUMN_LINES_2)
            write_lines(page, LEFT, 340, ["Left column ends here."])
            write_lines(page, RIGHT, 340, ["Right column ends here."])
        elif number == 2:
            write_lines(page, LEFT, 80, ["3 Results"], size=12, font="hebo")
            write_lines(page, LEFT, 100, ["The dual-encoder wins on two of three benchmarks."])
            write_lines(page, LEFT, 140, ["References"], size=12, font="hebo")
            write_lines(
                page,
                LEFT,
                160,
                [
                    "Smith, A. Dense retrieval. In Proceedings of ACL, 2020.",
                    "Jones, B. Sparse retrieval. arXiv preprint, 2019.",
                ],
            )
        else:
            write_lines(page, LEFT, 80, ["A Proofs"], size=12, font="hebo")
            write_lines(page, LEFT, 100, ["The proof of the main claim is short."])
    doc.save(path)
    return path
