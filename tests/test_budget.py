from localdigest.budget import plan_context, section_context, section_priority
from localdigest.paper import (
    ABSTRACT,
    APPENDIX,
    BODY,
    REFERENCES,
    Block,
    Paper,
    PaperMetadata,
    Section,
)


def _section(title, kind=BODY, words=100, page=1):
    return Section(title=title, kind=kind, blocks=[Block(" ".join(["word"] * words), page)])


def _paper(*sections):
    return Paper(
        path="p.pdf",
        sha256="0" * 64,
        page_count=9,
        metadata=PaperMetadata(),
        sections=list(sections),
    )


def count_words(text):
    return len(text.split())


def test_priority_order():
    assert section_priority(_section("Abstract", ABSTRACT)) == 0
    assert section_priority(_section("Introduction")) == 1
    assert section_priority(_section("Proposed Method")) == 2
    assert section_priority(_section("Experiments")) == 3
    assert section_priority(_section("Conclusion")) == 4
    assert section_priority(_section("Related Work")) == 5


def test_everything_fits_and_references_are_recorded_as_left_out():
    paper = _paper(
        _section("Abstract", ABSTRACT),
        _section("Introduction"),
        _section("References", REFERENCES),
        _section("A Proofs", APPENDIX),
    )
    plan = plan_context(paper, count_words, budget=10_000)
    assert [s.title for s in plan.verbatim] == ["Abstract", "Introduction"]
    assert plan.to_condense == []
    assert any("References" in x for x in plan.left_out)
    assert any("appendix" in x for x in plan.left_out)


def test_over_budget_keeps_priorities_condenses_rest_and_records_what_is_cut():
    paper = _paper(
        _section("Abstract", ABSTRACT, words=50),
        _section("Introduction", words=100),
        _section("Related Work", words=400),
        _section("Method", words=100),
        _section("Results", words=100),
        _section("Extra", words=400),
    )
    plan = plan_context(paper, count_words, budget=600, notes_tokens=160, max_condensed=1)
    assert [s.title for s in plan.verbatim] == ["Abstract", "Introduction", "Method", "Results"]
    assert [s.title for s in plan.to_condense] == ["Related Work"]
    assert plan.left_out == ["Extra (did not fit the context window)"]
    assert [s.title for s in plan.sections_in_order(paper)] == [
        "Abstract",
        "Introduction",
        "Related Work",
        "Method",
        "Results",
    ]
    assert plan.tokens <= 600


def test_section_context_marks_pages():
    section = Section("Method", number="3", blocks=[Block("a", 2), Block("b", 2), Block("c", 3)])
    assert section_context(section) == "## 3 Method\n[p.2] a\nb\n[p.3] c"


def test_pick_passages_follows_cues_and_spreads_over_sentences():
    from localdigest.budget import passage_text, pick_passages

    intro = Section("Introduction", blocks=[Block(
        "However, the problem of labelling audio is hard. "
        "Earlier work only used small sets of clips.", 1)])  # fmt: skip
    data = Section("Data", blocks=[Block(
        "Our corpus has 50000 images and 120 classes in total. "
        "The corpus was collected from 12 public web sites. "
        "Each image has a caption written by an annotator.", 2)])  # fmt: skip
    results = Section("Results", blocks=[Block(
        "We achieve 91.2% accuracy, 3.4 points above ResNet-50.", 3)])  # fmt: skip
    passages = pick_passages(
        [intro, data, results],
        [("problem", "however"), ("data", "NUM"), ("accuracy", "NUM"), ("data",)],
        words=10,  # one sentence reaches 0.6 of it
    )
    assert passages[0][0].text == "However, the problem of labelling audio is hard."
    # the section title counts: the best numbered sentence of "Data"
    assert [b.text[:10] for b in passages[1]] == ["Our corpus"]
    assert [b.page for b in passages[2]] == [3]
    # sentences given to an earlier question come last
    assert passages[3][0].text.startswith("The corpus was collected")
    two = pick_passages([intro, data, results], [("data", "NUM")], words=20)
    assert [b.text[:10] for b in two[0]] == ["Our corpus", "The corpus"]  # in document order
    text = passage_text([*two[0], *passages[2]])
    assert text.startswith("[p.2] Our corpus has 50000") and "web sites. [p.3] We achieve" in text
    assert text.count("[p.2]") == 1  # one page mark per page change


def test_section_context_leaves_out_moved_sentences():
    section = Section("Data", blocks=[
        Block("Our corpus has 50000 images. It was collected from 12 web sites.", 2),
        Block("Each image has a caption.", 2), Block("Captions are short.", 3)])  # fmt: skip
    moved = frozenset(
        {Block("It was collected from 12 web sites.", 2), Block("Each image has a caption.", 2)}
    )
    assert (
        section_context(section, moved)
        == "## Data\n[p.2] Our corpus has 50000 images.\n[p.3] Captions are short."
    )
