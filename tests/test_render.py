"""Rendering: golden files for each built-in format, ordering, escaping, templates, records, CLI.

Golden files live in tests/golden/. After an intended change to a template, regenerate them with
    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render.py
and review the diff before committing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from localdigest import __version__
from localdigest.cli import cli, main
from localdigest.config import Settings
from localdigest.errors import StoreError, TemplateError, UsageError
from localdigest.paper import PaperMetadata
from localdigest.record import DigestRecord, Problem
from localdigest.render import (
    apply_punctuation,
    format_date,
    load_records,
    markdown_escape,
    order_records,
    render,
    write_digest,
)

GOLDEN = Path(__file__).parent / "golden"
RECORDS_FILE = GOLDEN / "input-records.json"
HOSTILE_TITLE = "<script>alert(1)</script> & *Bold* [link](javascript:x)"
SETTINGS = Settings()


def sample_records() -> list[DigestRecord]:
    """Fixed hand-written records (golden/input-records.json): a complete Japanese paper, an older
    one, one with no metadata at all, a hostile title, and a failed paper, deliberately not in
    date order."""
    return load_records([RECORDS_FILE])


def _normalized(text: str) -> str:
    """Golden files do not change with the package version."""
    return text.replace(f"localdigest {__version__}", "localdigest VERSION")


@pytest.mark.parametrize("fmt", ["txt", "md", "html", "json"])
def test_builtin_format_matches_golden(fmt: str) -> None:
    rendered = _normalized(render(sample_records(), fmt, settings=SETTINGS))
    golden = GOLDEN / f"digest.{fmt}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["txt", "md", "html", "bilingual-txt", "bilingual-md"])
def test_sources_and_flags_match_golden(fmt: str) -> None:
    """A schema-2 record (English source per sentence, evidence per answer, a defect the retries
    could not fix) in every template format."""
    records = load_records([GOLDEN / "input-records-v2.json"])
    rendered = _normalized(render(records, fmt, settings=SETTINGS))
    golden = GOLDEN / f"v2-digest.{fmt.replace('bilingual-', 'bilingual.')}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")


def test_defects_are_flagged_beside_their_item_in_every_format() -> None:
    records = load_records([GOLDEN / "input-records-v2.json"])
    japanese = next(q for q in records[0].qa if not q.english_shown)
    japanese.warnings = [
        Problem("Chinese", "数据"),
        Problem("English words left", "slow"),
        Problem("loanword of another word", "パース"),
    ]
    records[0].abstract_sentences[1].warnings = [Problem("repeats itself")]
    for fmt in ("txt", "md", "html", "bilingual-txt", "bilingual-md"):
        text = render(records, fmt, settings=SETTINGS)
        # a kind measured to mark wrong renderings is shown; "English words left" is not
        assert "［要確認: 中国語の混入・原文と異なる外来語］" in text, fmt
        assert "［要確認: 繰り返し］" in text, fmt
        assert "英語の混入" not in text, fmt
        assert "［要確認: 英語のまま" not in text, fmt  # the marked English says it already
        assert "［未翻訳の原文］We propose FooNet" in text


def test_japanese_text_formats_carry_no_english_sources_but_bilingual_ones_do() -> None:
    records = load_records([GOLDEN / "input-records-v2.json"])
    evidence = "Training deep networks with SGD is slow"
    assert evidence not in render(records, "txt", settings=SETTINGS)
    assert evidence not in render(records, "md", settings=SETTINGS)
    for fmt in ("bilingual-txt", "bilingual-md", "html"):
        text = render(records, fmt, settings=SETTINGS)
        assert evidence in text and "12.3 points above SGD" in text, fmt


def test_txt_has_reference_structure() -> None:
    text = render(sample_records(), "txt", settings=SETTINGS)
    lines = text.splitlines()
    assert lines[0] == SETTINGS.intro
    # Index: newest first, unknown date last, failed paper not in the body.
    index_titles = [line[2:] for line in lines if line.startswith("- ")]
    assert index_titles[:4] == [
        "Agent Planning with World Knowledge Model",
        HOSTILE_TITLE,
        "Attention Is All You Need",
        "（タイトル不明: scan-0042.pdf）",
    ]
    start = lines.index("Attention Is All You Need")
    assert lines[start + 1 : start + 7] == [
        "著者:Ashish Vaswani, Noam Shazeer, Niki Parmar",
        "発行日:2017年06月12日",
        "最終更新日:2023年08月02日",
        "URL:http://arxiv.org/pdf/1706.03762v7",
        "カテゴリ:Computation and Language, Machine Learning",
        "概要:",
    ]
    assert lines[start + 8] == "Q&A:"
    assert lines[start + 9].startswith("Q: Transformerは")
    assert lines[start + 10].startswith("A: WMT 2014")


def test_missing_metadata_gets_placeholders_not_empty_labels() -> None:
    text = render(sample_records(), "txt", settings=SETTINGS)
    block = text.split("（タイトル不明: scan-0042.pdf）\n著者:")[1].split("\n\n")[0]
    assert block.startswith(
        "不明\n発行日:不明\n最終更新日:不明\nURL:なし（arXiv ID 不明）\nカテゴリ:不明"
    )
    assert "（概要なし）" in block and "（Q&Aなし）" in block
    for label in ("著者:", "発行日:", "最終更新日:", "URL:", "カテゴリ:"):
        assert f"\n{label}\n" not in text


def test_url_falls_back_to_the_arxiv_id() -> None:
    record = DigestRecord(
        "x.pdf", "1", PaperMetadata(title="T", arxiv_id="2405.14205", arxiv_version=2)
    )
    assert "URL:http://arxiv.org/pdf/2405.14205v2\n" in render([record], "txt", settings=SETTINGS)


def test_failed_records_are_listed_apart() -> None:
    text = render(sample_records(), "txt", settings=SETTINGS)
    assert "- A Broken Paper\n発行日" not in text and "\nA Broken Paper\n" not in text
    assert "A Broken Paper (broken.pdf): PDF is encrypted" in text.split("生成に失敗した論文:")[1]


def test_html_escapes_hostile_text() -> None:
    html = render(sample_records(), "html", settings=SETTINGS)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "<b>太字" not in html and "<i>質問" not in html
    assert 'href="javascript:' not in html
    assert "<script" not in html  # the page itself carries no script either
    assert html.count("<details>") == 4  # one per Q&A pair


def test_html_is_self_contained() -> None:
    html = render(sample_records()[:3], "html", settings=SETTINGS)  # no hostile text
    for external in ("<link", "@import", "url(", "<img", "src="):
        assert external not in html
    assert '<meta name="viewport"' in html and "prefers-color-scheme: dark" in html


def test_markdown_escapes_and_cites_pages() -> None:
    md = render(sample_records(), "md", settings=SETTINGS)
    assert "<script>" not in md
    assert r"\<script\>alert(1)\</script\>" in md
    assert "（p. 1, 8）" in md and "（p. 8）" in md
    assert '<a id="paper-1"></a>' in md and "](#paper-1)" in md


def test_json_holds_every_record_in_order() -> None:
    document = json.loads(render(sample_records(), "json", settings=SETTINGS))
    assert document["schema_version"] == 1
    assert document["generated_by"] == f"localdigest {__version__}"
    titles = [p["metadata"]["title"] for p in document["papers"]]
    assert titles == [
        "A Broken Paper",
        "Agent Planning with World Knowledge Model",
        HOSTILE_TITLE,
        "Attention Is All You Need",
        None,
    ]
    published = DigestRecord.from_dict(document["papers"][1])
    assert published.source_path == "2405.14205v1.pdf"  # the file, not where it lies
    published.source_path = sample_records()[2].source_path
    assert published == sample_records()[2]


def test_json_keeps_japanese_readable() -> None:
    assert "注意機構" in render(sample_records(), "json", settings=SETTINGS)


def test_given_order_keeps_input_order() -> None:
    text = render(sample_records(), "txt", settings=SETTINGS, order="given")
    index = [line for line in text.splitlines() if line.startswith("- ")]
    assert index[0] == "- Attention Is All You Need"
    assert index[1] == "- （タイトル不明: scan-0042.pdf）"


def test_order_by_date_puts_unknown_last_and_is_stable() -> None:
    a, b, c = (
        DigestRecord("a.pdf", "1", PaperMetadata(published=None)),
        DigestRecord("b.pdf", "2", PaperMetadata(published="2024-01-01")),
        DigestRecord("c.pdf", "3", PaperMetadata(published="2024-01-01")),
    )
    assert [r.source_path for r in order_records([a, b, c], "date")] == ["b.pdf", "c.pdf", "a.pdf"]


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("standard", "要点を示す。次に、結果を述べる。"),
        ("reference", "要点を示す.次に、結果を述べる."),
    ],
)
def test_punctuation_setting(style: str, expected: str) -> None:
    assert apply_punctuation("要点を示す。次に、結果を述べる。", style) == expected
    text = render(sample_records(), "txt", settings=Settings(punctuation=style))
    sentence = "訓練した" + ("。" if style == "standard" else ".")
    assert f"A: 8基のP100 GPUで3.5日間{sentence}" in text


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("punctuation", "fancy", "punctuation: 'fancy' is not one of 'standard', 'reference'"),
        ("order", "title", "order: 'title' is not one of 'date', 'given'"),
        ("formats", "txt,pdf", "formats: 'txt,pdf': use a comma-separated list of txt, md"),
    ],
)
def test_settings_render_reads_are_checked_where_settings_are_made(
    setting: str, value: str, message: str
) -> None:
    """render never checks a setting again: config.py refuses a bad one, even from Python."""
    with pytest.raises(UsageError, match=message):
        Settings(**{setting: value})


def test_intro_comes_from_settings() -> None:
    text = render(sample_records(), "md", settings=Settings(intro="今週の論文です。"))
    assert "今週の論文です。" in text


@pytest.mark.parametrize(
    ("iso", "shown"),
    [
        ("2024-05-23", "2024年05月23日"),
        ("2017-06", "2017年06月"),
        (None, "不明"),
        ("", "不明"),
        ("May 2024", "May 2024"),
    ],
)
def test_format_date(iso: str | None, shown: str) -> None:
    assert format_date(iso) == shown


def test_published_from_the_arxiv_id_says_so() -> None:
    """A later version's stamp dates that version: 発行日 is the month its id encodes."""
    meta = PaperMetadata(title="T", arxiv_id="1706.08606", published="2017-06",
                         published_from_id=True, updated="2017-06-29")  # fmt: skip
    text = render([DigestRecord("1706.08606v2.pdf", "1", meta)], "txt", settings=Settings())
    assert "発行日:2017年06月（arXiv IDより）" in text
    assert "最終更新日:2017年06月29日" in text


def test_markdown_escape() -> None:
    assert markdown_escape("a_b *c* [d] <e>") == r"a\_b \*c\* \[d\] \<e\>"


def test_user_template_by_path(tmp_path: Path) -> None:
    template = tmp_path / "mine.txt.j2"
    template.write_text(
        "{% for p in papers %}{{ p.number }} {{ p.record.metadata.arxiv_id }}\n{% endfor %}",
        encoding="utf-8",
    )
    assert render(sample_records()[:1], str(template), settings=SETTINGS) == "1 1706.03762\n"


def test_user_html_template_is_autoescaped(tmp_path: Path) -> None:
    template = tmp_path / "mine.html.j2"
    template.write_text("{% for p in papers %}<p>{{ p.title }}</p>{% endfor %}", encoding="utf-8")
    html = render(sample_records(), str(template), settings=SETTINGS)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_template_typo_names_the_variable_and_line(tmp_path: Path) -> None:
    template = tmp_path / "typo.txt.j2"
    template.write_text("{{ intro }}\n{% for p in papers %}{{ p.titel }}{% endfor %}\n")
    with pytest.raises(TemplateError, match=r"typo.txt.j2 line 2: undefined variable: .*'titel'"):
        render(sample_records(), str(template), settings=SETTINGS)


def test_template_syntax_error_names_the_line(tmp_path: Path) -> None:
    template = tmp_path / "broken.j2"
    template.write_text("ok\n{% for p in papers %}\n")
    with pytest.raises(TemplateError, match=r"broken.j2 line \d"):
        render(sample_records(), str(template), settings=SETTINGS)


@pytest.mark.parametrize("fmt", ["pdf", "missing.j2"])
def test_unknown_format_or_missing_template(fmt: str) -> None:
    with pytest.raises((UsageError, TemplateError), match=fmt):
        render(sample_records(), fmt, settings=SETTINGS)


def _write_records(directory: Path, records: list[DigestRecord]) -> None:
    for i, record in enumerate(records):
        sub = directory / f"shard{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{record.source_sha256[:8]}.json").write_text(
            json.dumps(record.to_dict(), ensure_ascii=False), encoding="utf-8"
        )


def test_load_records_from_directory_recursively(tmp_path: Path) -> None:
    records = sample_records()
    _write_records(tmp_path / "store", records)
    (tmp_path / "store" / ".partial.json").write_text("{", encoding="utf-8")  # write in progress
    loaded = load_records([tmp_path / "store"])
    assert sorted(r.source_sha256 for r in loaded) == sorted(r.source_sha256 for r in records)


def test_load_records_accepts_a_digest_document(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_digest(sample_records(), out, ["json"], SETTINGS)
    assert len(load_records([out / "digest.json"])) == 5
    # Met while walking a directory, the digest document is output, not more records.
    _write_records(out / "records", sample_records()[:2])
    assert len(load_records([out])) == 2


def test_corrupt_record_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"source_path": "x.pdf"', encoding="utf-8")
    with pytest.raises(StoreError, match="bad.json: corrupt record file"):
        load_records([bad])
    bad.write_text('{"title": "not a record"}', encoding="utf-8")
    with pytest.raises(StoreError, match="bad.json: not a digest record"):
        load_records([bad])


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="nope: no such file"):
        load_records([tmp_path / "nope"])
    with pytest.raises(StoreError, match="no digest records found"):
        load_records([tmp_path])


def test_write_digest_writes_each_format(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        written = write_digest(sample_records(), tmp_path / "out", ["txt", "html"], SETTINGS)
    finally:
        os.umask(previous)
    assert [p.name for p in written] == ["digest.txt", "digest.html"]
    assert written[0].stat().st_mode & 0o777 == 0o644  # the umask's mode, not mkstemp's 0600
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["digest.html", "digest.txt"]


def test_cli_render_to_stdout_and_file(tmp_path: Path) -> None:
    _write_records(tmp_path / "store", sample_records())
    runner = CliRunner()
    result = runner.invoke(cli, ["render", str(tmp_path / "store"), "-t", "txt"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == SETTINGS.intro
    out = tmp_path / "digest.html"
    result = runner.invoke(
        cli, ["render", str(tmp_path / "store"), "-t", "html", "-o", str(out), "--order", "given"]
    )
    assert result.exit_code == 0, result.output
    assert "&lt;script&gt;" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing-dir"], "missing-dir: no such file or directory"),
        (["STORE", "-t", "typo.j2"], "typo.j2: template not found"),
    ],
)
def test_cli_render_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    _write_records(tmp_path / "store", sample_records())
    argv = ["render", *(str(tmp_path / "store") if a == "STORE" else a for a in args)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    assert message in capsys.readouterr().err


def test_cli_render_bad_order_is_usage_error(tmp_path: Path) -> None:
    _write_records(tmp_path / "store", sample_records())
    result = CliRunner().invoke(cli, ["render", str(tmp_path / "store"), "--order", "title"])
    assert result.exit_code == 2


def _dated(record: DigestRecord, created: str, **changes: object) -> DigestRecord:
    record = DigestRecord.from_dict(record.to_dict())
    record.provenance = dict(record.provenance, created=created)
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def test_load_records_keeps_each_papers_newest_success_or_else_its_newest_failure(
    tmp_path: Path,
) -> None:
    """Issue 16: one truth per paper, whatever else the directory holds."""
    first, second = sample_records()[:2]
    failed = {"status": "error", "error": "out of memory", "summary_ja": None}
    records = [
        _dated(first, "2024-05-01T10:00:00+00:00", summary_ja="古い要約。"),
        _dated(first, "2024-05-03T10:00:00+00:00", **failed),  # a later failed redo
        _dated(first, "2024-05-02T10:00:00+00:00", summary_ja="新しい要約。"),
        _dated(second, "2024-05-01T10:00:00+00:00", **failed),
        _dated(second, "2024-05-02T10:00:00+00:00", **{**failed, "error": "timed out"}),
    ]
    for i, record in enumerate(records):
        (tmp_path / f"{i}.json").write_text(json.dumps(record.to_dict()), encoding="utf-8")
    kept = load_records([tmp_path])
    assert [(r.source_sha256, r.status, r.summary_ja, r.error) for r in kept] == [
        (first.source_sha256, "ok", "新しい要約。", None),
        (second.source_sha256, "error", None, "timed out"),
    ]
    assert len(load_records([tmp_path], every=True)) == 5


def test_render_of_a_store_after_runs_with_other_settings_shows_each_paper_once(
    tmp_path: Path,
) -> None:
    """Issue 16: two runs with different options on one store; the digest lists each paper
    once (the latest run's), and --all lists the superseded records too."""
    from batch_fake import make_pdfs, setup

    from localdigest.batch import run_batch
    from localdigest.store import RecordStore

    pdfs = make_pdfs(tmp_path / "papers", 3)
    store = RecordStore(tmp_path / "out" / "records")
    for model in ("model-a", "model-b"):
        fingerprint, factory = setup(model=model)
        assert run_batch(pdfs, store, factory, fingerprint=fingerprint).done == 3
    runner = CliRunner()
    shown = runner.invoke(cli, ["render", str(store.records_dir), "-t", "json"])
    assert shown.exit_code == 0, shown.output
    assert "3 superseded record(s) left out" in shown.stderr
    papers = json.loads(shown.stdout)["papers"]
    assert len(papers) == 3 and {p["provenance"]["model"] for p in papers} == {"model-b"}
    every = runner.invoke(cli, ["render", str(store.records_dir), "-t", "json", "--all"])
    assert len(json.loads(every.stdout)["papers"]) == 6
    scores = runner.invoke(cli, ["eval", str(store.records_dir)])
    assert scores.exit_code == 0 and scores.stdout.count("Paper ") == 3


def _hostile_record() -> DigestRecord:
    return DigestRecord(
        source_path="/home/alice/secret-project/2401.00001v1.pdf",
        source_sha256="f" * 64,
        metadata=PaperMetadata(
            title="Real title\nURL:http://evil.example/\x1b[2J",
            published="<img src=x onerror=alert(1)>",
            url="http://arxiv.org/pdf/x><img src=x onerror=alert(1)>",
            source="/home/alice/metadata/snapshot.json",
        ),
        summary_ja="要約。\nQ: 偽の質問",
        abstract_ja="概要。\r\nカテゴリ:偽\u2028行",
        provenance={"model_path": "/home/alice/models/model.gguf"},
    )


def _failed_record() -> DigestRecord:
    return DigestRecord(
        source_path="/home/alice/secret-project/broken.pdf",
        source_sha256="e" * 64,
        metadata=PaperMetadata(),
        status="error",
        error="cannot read /home/alice/secret-project/broken.pdf: Permission denied",
    )


@pytest.mark.parametrize("fmt", ["txt", "md", "html", "json"])
def test_no_renderer_publishes_a_local_path(fmt: str) -> None:
    """Issue 16: failed papers published absolute local paths."""
    text = render([_hostile_record(), _failed_record()], fmt, settings=SETTINGS)
    assert "/home/alice" not in text
    assert "broken.pdf" in text


def test_markdown_link_cannot_carry_raw_html() -> None:
    """Issue 16: an unescaped value in the Markdown autolink let a crafted id inject HTML."""
    text = render([_hostile_record()], "md", settings=SETTINGS)
    assert not re.search(r"(?<!\\)<img", text)  # only as escaped text
    assert "<http://arxiv.org/pdf/x%3E%3Cimg%20src=x%20onerror=alert(1)%3E>" in text


def test_no_value_can_start_a_line_of_its_own_in_the_text_format() -> None:
    lines = render([_hostile_record()], "txt", settings=SETTINGS).splitlines()
    assert not [
        line for line in lines if line.startswith(("URL:http://evil", "Q: 偽", "カテゴリ:偽"))
    ]
    assert "Real title URL:http://evil.example/ [2J" in lines
    assert not any("\x1b" in line or "\u2028" in line for line in lines)


def test_writing_a_digest_leaves_the_process_umask_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: render flipped the process-wide umask (to 0, briefly, under other threads)."""
    previous = os.umask(0o027)
    try:

        def refuse(mask: int) -> int:
            raise AssertionError(f"os.umask({mask:o}) called")

        monkeypatch.setattr(os, "umask", refuse)
        (path,) = write_digest(sample_records(), tmp_path / "out", ["txt"], SETTINGS)
    finally:
        monkeypatch.undo()
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o640
