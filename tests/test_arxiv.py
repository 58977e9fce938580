"""arXiv ids in stamps, metadata files and file names; URLs and category names."""

from __future__ import annotations

import pytest

from localdigest import arxiv


def test_parse_stamp() -> None:
    stamp = arxiv.parse_stamp("arXiv:1706.03762v5  [cs.CL]  6 Dec 2017")
    assert stamp == arxiv.Stamp("1706.03762", 5, "cs.CL", "2017-12-06")
    old = arxiv.parse_stamp("arXiv:math/0211159v1 [math.DG] 11 Nov 2002")
    assert old == arxiv.Stamp("math/0211159", 1, "math.DG", "2002-11-11")
    assert arxiv.parse_stamp("see arXiv for details") is None


@pytest.mark.parametrize(
    ("arxiv_id", "month"),
    [
        ("1706.08606", "2017-06"),
        ("2301.05217v2", "2023-01"),
        ("hep-th/9901001", "1999-01"),
        ("math/0211159", "2002-11"),
        ("1713.00001", None),  # no 13th month
        ("not an id", None),
    ],
)
def test_month_of_id(arxiv_id: str, month: str | None) -> None:
    assert arxiv.month_of_id(arxiv_id) == month


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1706.03762v5", ("1706.03762", 5)),
        ("arXiv:2301.05217", ("2301.05217", None)),
        ("http://arxiv.org/abs/1412.6980v9", ("1412.6980", 9)),
        ("hep-th/9901001v2", ("hep-th/9901001", 2)),
    ],
)
def test_split_arxiv_id(raw: str, expected: tuple[str, int | None]) -> None:
    assert arxiv.split_arxiv_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["http://arxiv.org/abs/x><script>alert(1)</script>", "1706.03762 onclick=x", ""]
)
def test_split_arxiv_id_refuses_what_is_not_an_id(raw: str) -> None:
    assert arxiv.split_arxiv_id(raw) is None


def test_url_format() -> None:
    assert arxiv.arxiv_url("1706.03762", 5) == "http://arxiv.org/pdf/1706.03762v5"


def test_category_names_cover_the_taxonomy() -> None:
    assert arxiv.category_name("cs.CL") == "Computation and Language"
    assert arxiv.category_name("cs.AI") == "Artificial Intelligence"
    assert arxiv.category_name("stat.ML") == "Machine Learning"
    assert arxiv.category_name("math.OC") == "Optimization and Control"
    assert arxiv.category_name("q-bio.NC") == "Neurons and Cognition"
    assert arxiv.category_name("xx.YY") == "xx.YY"
    groups = {code.split(".")[0] for code in arxiv._category_names()}
    assert {"cs", "math", "stat", "physics", "q-bio", "q-fin", "econ", "eess"} <= groups
    assert len(arxiv._category_names()) >= 150


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1706.03762v5.pdf", ("1706.03762", 5)),
        ("2401.12345.pdf", ("2401.12345", None)),
        ("1412.6980v9_adam.pdf", ("1412.6980", 9)),
        ("arXiv-2310.01234v2-notes.pdf", ("2310.01234", 2)),
        ("hep-th9901001v2.pdf", ("hep-th/9901001", 2)),
        ("math_0211159.pdf", ("math/0211159", None)),
        ("report2020123.pdf", None),
        ("attention.pdf", None),
    ],
)
def test_arxiv_id_from_name(name: str, expected: tuple[str, int | None] | None) -> None:
    assert arxiv.arxiv_id_from_name(name) == expected
