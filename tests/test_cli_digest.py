"""The whole `digest` path through the CLI on the tiny generated model, with the network off."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from pdfs import fixture_paper_pdf

from localdigest.cli import cli


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def run_digest(*args: str):
    return CliRunner().invoke(cli, ["digest", *args], catch_exceptions=False)


def test_digest_on_tiny_model_offline_with_a_broken_pdf(
    tiny_model_path: Path, tmp_path: Path, no_network: None
) -> None:
    papers = tmp_path / "papers"
    papers.mkdir()
    fixture_paper_pdf(papers / "good.pdf")
    (papers / "broken.pdf").write_bytes(b"this is not a pdf")
    out = tmp_path / "out"
    common = [str(papers), "-o", str(out), "--model", str(tiny_model_path), "--questions", "2"]
    args = [*common, "--threads", "1", "--retries", "0"]

    result = run_digest(*args)
    assert result.exit_code == 1, result.output  # one paper failed, the other is done
    assert "broken.pdf" in result.output and "not a PDF" in result.output
    assert "model score below -3, an answer's below -2.4, or" in result.output  # what is English
    digest = json.loads((out / "digest.json").read_text(encoding="utf-8"))
    (paper,) = [p for p in digest["papers"] if p["status"] == "ok"]
    assert paper["metadata"]["title"] == "A Study of Fixture Papers"
    assert len(paper["qa"]) <= 2
    assert paper["provenance"]["model"] == "tiny"
    stages = paper["stats"]["stages"]
    assert stages["summary"]["evaluated_tokens"] < stages["summary"]["prompt_tokens"]
    for name in ("digest.txt", "digest.md", "digest.html"):
        assert (out / name).stat().st_size > 0
    records = list((out / "records").rglob("*.json"))
    assert len(records) == 2  # the paper and the error record

    again = run_digest(*args)
    assert "1 skipped" in again.output
    assert len(list((out / "records").rglob("*.json"))) == 2


def test_digest_missing_model_is_a_one_line_error(tmp_path: Path) -> None:
    pdf = fixture_paper_pdf(tmp_path / "p.pdf")
    missing = tmp_path / "nope.gguf"
    result = CliRunner().invoke(
        cli, ["digest", str(pdf), "-o", str(tmp_path), "--model", str(missing)]
    )
    assert result.exit_code == 1
    assert "nope.gguf" in str(result.exception)


def test_digest_filters_need_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from localdigest.cli import main

    pdf = fixture_paper_pdf(tmp_path / "p.pdf")
    with pytest.raises(SystemExit) as exit_info:
        main(["digest", str(pdf), "-o", str(tmp_path), "--since", "2020-01-01"])
    assert exit_info.value.code == 2  # the library's UsageError, mapped by main()
    assert "--metadata" in capsys.readouterr().err


def test_two_runs_with_other_options_on_one_store_list_each_paper_once(
    tiny_model_path: Path, tmp_path: Path, no_network: None
) -> None:
    """Issue 16: `digest -o OUT` shows exactly that run's inputs, `render STORE` each paper once."""
    papers = tmp_path / "papers"
    papers.mkdir()
    fixture_paper_pdf(papers / "good.pdf")
    (papers / "copy-of-good.pdf").write_bytes((papers / "good.pdf").read_bytes())
    store = tmp_path / "store"
    common = ["--model", str(tiny_model_path), "--threads", "1", "--retries", "0"]
    common += ["--store", str(store), "--format", "json"]
    for questions in ("1", "2"):
        out = tmp_path / f"out-{questions}"
        result = run_digest(str(papers), "-o", str(out), "--questions", questions, *common)
        assert result.exit_code == 0, result.output
        digest = json.loads((out / "digest.json").read_text(encoding="utf-8"))
        assert [p["provenance"]["options"]["questions"] for p in digest["papers"]] == [
            int(questions)
        ]
    assert len(list((store / "records").rglob("*.json"))) == 2  # one record per run
    rendered = CliRunner().invoke(cli, ["render", str(store / "records"), "-t", "json"])
    (paper,) = json.loads(rendered.stdout)["papers"]
    assert paper["provenance"]["options"]["questions"] == 2  # the newest
