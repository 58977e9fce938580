"""The library API under the CLI: README's three lines run, the commands call it, settings reach
the stages checked, and importing a stage loads no CLI toolkit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pdfs import fixture_paper_pdf

from localdigest import api
from localdigest.backends.fake import FakeBackend
from localdigest.cli import cli
from localdigest.config import Settings
from localdigest.errors import ConfigError, PDFError

README = Path(__file__).resolve().parent.parent / "README.md"
TINY_RUN = {"LOCALDIGEST_THREADS": "1", "LOCALDIGEST_RETRIES": "0", "LOCALDIGEST_MAX_TOKENS": "48"}


def readme_python() -> str:
    """The Python block of README's "From Python" section."""
    section = README.read_text(encoding="utf-8").split("### From Python", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "README has no Python example under 'From Python'"
    return found.group(1)


def test_readme_digests_a_pdf_in_three_lines_of_python(
    tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code = readme_python()
    assert len(code.strip().splitlines()) == 3
    fixture_paper_pdf(tmp_path / "paper.pdf")
    monkeypatch.chdir(tmp_path)
    for name, value in {**TINY_RUN, "LOCALDIGEST_MODEL": str(tiny_model_path)}.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own lines
    result = namespace["result"]
    assert result.exit_code == 0
    assert [p.name for p in result.written] == [
        "digest.txt",
        "digest.md",
        "digest.html",
        "digest.json",
    ]
    (record,) = result.records
    assert record.metadata.title == "A Study of Fixture Papers"
    assert len(record.qa) <= 5
    assert "1 papers: 1 done" in capsys.readouterr().out
    assert (tmp_path / "out" / "records").is_dir()


def test_digest_cmd_is_a_call_of_api_digest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command parses, calls api.digest once with checked settings, prints, exits."""
    from localdigest.batch import BatchSummary

    calls: list[tuple[Any, ...]] = []

    def fake_digest(inputs: Any, settings: Settings, out: Path, **options: Any) -> api.RunResult:
        calls.append((inputs, settings, out, options))
        return api.RunResult(BatchSummary(total=1, failed=1), [Path("a.pdf")], model="m")

    monkeypatch.setattr(api, "digest", fake_digest)
    args = ["digest", "a.pdf", "-o", str(tmp_path), "--store", str(tmp_path / "s")]
    result = CliRunner().invoke(cli, [*args, "--workers", "3", "--executor", "ray", "--limit", "2"])
    assert result.exit_code == 1, result.output
    ((inputs, settings, out, options),) = calls
    assert inputs == ("a.pdf",) and out == tmp_path
    assert (settings.store, settings.workers, settings.executor) == (str(tmp_path / "s"), 3, "ray")
    assert options["selection"].limit == 2
    assert "model: m" in result.output


def test_run_settings_come_from_the_environment_too(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["config"], env={"LOCALDIGEST_STORE": str(tmp_path), "LOCALDIGEST_WORKERS": "2"}
    )
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in result.output.splitlines()}
    assert lines["store"] == f"{str(tmp_path)!r} (environment (LOCALDIGEST_STORE))"
    assert lines["workers"] == "2 (environment (LOCALDIGEST_WORKERS))"
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(ConfigError, match="store: Directory .* is a file"):
        Settings(store=str(afile))


def test_extract_honours_the_max_pages_setting(tmp_path: Path) -> None:
    pdf = fixture_paper_pdf(tmp_path / "paper.pdf", pages=3)
    ((path, paper),) = api.extract(pdf, Settings(max_pages=1))
    assert path == pdf and not isinstance(paper, PDFError)
    assert (paper.page_count, paper.pages_read) == (3, 1)
    result = CliRunner().invoke(
        cli, ["extract", str(pdf), "--json"], env={"LOCALDIGEST_MAX_PAGES": "2"}
    )
    assert json.loads(result.stdout)["pages_read"] == 2
    ((_, broken),) = api.extract(tmp_path / "missing.pdf", Settings())
    assert isinstance(broken, PDFError)


def test_digest_paper_and_render_with_the_fake_backend(tmp_path: Path) -> None:
    from test_generate import responder

    pdf = fixture_paper_pdf(tmp_path / "paper.pdf")
    settings = Settings(questions=2)
    record = api.digest_paper(pdf, settings, backend=FakeBackend(responder()))
    assert record.status == "ok" and record.abstract_ja
    assert "A Study of Fixture Papers" in api.render([record], "md", settings)


def test_importing_the_library_loads_no_cli_toolkit() -> None:
    code = (
        "import sys, localdigest.api, localdigest.render, localdigest.generate, "
        "localdigest.pipeline, localdigest.batch\n"
        "print(sorted(m for m in ('click', 'llama_cpp', 'pymupdf') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(README.parent)}
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert found.stdout.strip() == "[]"
