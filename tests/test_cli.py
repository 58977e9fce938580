"""The CLI's contract: help and version, one-line errors with exit codes, lazy heavy imports,
and settings precedence (flag > environment > config file > default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from localdigest import __version__
from localdigest.cli import cli
from localdigest.config import Settings, load_settings
from localdigest.errors import ConfigError

LOCALDIGEST = [sys.executable, "-m", "localdigest.cli"]


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """The real entry point in a subprocess: what a user's shell sees."""
    code = "import sys; from localdigest.cli import main; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=60,
    )


def test_help_and_version() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("digest", "extract", "render", "eval", "models", "config"):
        assert command in result.stdout
    version = run("--version")
    assert version.returncode == 0 and __version__ in version.stdout


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from localdigest.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('llama_cpp', 'pymupdf', 'fitz', 'jinja2') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in result.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["bogus"], "No such command 'bogus'"),
        (["--bogus"], "No such option"),
        (["digest"], "Missing argument"),
        (["render", "x.json", "--order", "bogus"], "bogus"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args: list[str], needle: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("localdigest: error:") and needle in lines[0]


def test_runtime_error_exits_1_and_debug_shows_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pdf"
    result = run("extract", str(missing))
    assert result.returncode in (1, 2)
    assert "missing.pdf" in result.stderr and "Traceback" not in result.stderr
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"not a pdf")
    result = run("extract", str(broken))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].count("broken.pdf") == 1
    assert "Traceback" not in result.stderr
    config = tmp_path / "localdigest.toml"
    config.write_text("questions = 'many'\n")
    debug = run("config", env={"LOCALDIGEST_DEBUG": "1"}, cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_settings_precedence(tmp_path: Path, isolated_home: Path) -> None:
    user_dir = isolated_home / ".config" / "localdigest"
    user_dir.mkdir(parents=True)
    (user_dir / "localdigest.toml").write_text('questions = 7\nmodel = "user"\nseed = 1\n')
    (tmp_path / "localdigest.toml").write_text('questions = 8\nmodel = "project"\n')
    settings = load_settings(cwd=tmp_path, environ={"LOCALDIGEST_QUESTIONS": "9"})
    assert (settings.questions, settings.model, settings.seed) == (9, "project", 1)
    assert settings.sources["questions"] == "environment (LOCALDIGEST_QUESTIONS)"
    assert settings.sources["model"] == str(tmp_path / "localdigest.toml")
    flagged = settings.with_flags(questions=3, model=None)
    assert flagged.questions == 3 and flagged.sources["questions"] == "command line"
    assert flagged.model == "project"
    assert Settings().questions == 10


@pytest.mark.parametrize(
    "content, message",
    [
        ("questions = 'x'\n", "questions: 'x' is not a valid integer"),
        ("questions = 2.5\n", "questions must be int, got 2.5"),
        ("bogus = 1\n", "unknown setting 'bogus'"),
        ("questions = \n", "cannot read config"),
    ],
)
def test_bad_config_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "localdigest.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(cwd=tmp_path, environ={})


def test_config_command_shows_sources(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["config"], env={"LOCALDIGEST_THREADS": "2"})
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("threads"))
    assert "2" in line and "environment (LOCALDIGEST_THREADS)" in line
    assert "(default)" in result.output


@pytest.fixture
def empty_aspects(tmp_path: Path) -> Path:
    import shutil

    from localdigest import paths

    prompts = tmp_path / "prompts"
    shutil.copytree(paths.templates_dir() / "prompts", prompts)
    (prompts / "aspects.tsv").write_text("# no aspects left\n", encoding="utf-8")
    return prompts


BAD_VALUES = [
    ("retries", "-1", "-1 is not in the range 0<=x<=5"),
    ("retries", "ture", "'ture' is not a valid integer"),
    ("glossary", "ture", "'ture' is not a valid boolean"),
    ("questions", "0", "0 is not in the range 1<=x<=30"),
    ("temperature", "9", "9.0 is not in the range 0<=x<=2"),
    ("paper_timeout", "-5", "-5 is not in the range x>=0"),
    ("order", "title", "'title' is not one of 'date', 'given'"),
    ("formats", "txt,pdf", "use a comma-separated list of txt, md, html, json, bilingual-txt"),
    ("prompts", "EMPTY_ASPECTS", "aspects.tsv: no aspects"),
]
NO_DIGEST_FLAG = {"glossary", "order"}


@pytest.mark.parametrize(
    ("source", "setting", "value", "needle"),
    [
        (source, *case)
        for source in ("flag", "environment", "config file")
        for case in BAD_VALUES
        if not (source == "flag" and case[0] in NO_DIGEST_FLAG)
    ],
)
def test_every_setting_is_checked_alike_from_flag_environment_and_config_file(
    tmp_path: Path,
    empty_aspects: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: str,
    setting: str,
    value: str,
    needle: str,
) -> None:
    """Issue 16: a bad value is one line and exit 2 wherever it comes from (it used to crash
    every paper, or silently become something else)."""
    from localdigest.cli import main

    value = str(empty_aspects) if value == "EMPTY_ASPECTS" else value
    monkeypatch.chdir(tmp_path)
    args = ["digest", "paper.pdf", "-o", str(tmp_path / "out")]
    if source == "flag":
        args += ["--" + {"formats": "format"}.get(setting, setting).replace("_", "-"), value]
    elif source == "environment":
        monkeypatch.setenv(f"LOCALDIGEST_{setting.upper()}", value)
    else:
        (tmp_path / "localdigest.toml").write_text(f"{setting} = {json.dumps(value)}\n")
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("localdigest: error:"), lines
    assert needle in lines[0]


def test_config_file_values_keep_their_toml_types(tmp_path: Path) -> None:
    (tmp_path / "localdigest.toml").write_text("glossary = false\nretries = 2\npaper_timeout = 0\n")
    settings = load_settings(cwd=tmp_path, environ={"LOCALDIGEST_TEMPERATURE": "0.5"})
    assert (settings.glossary, settings.retries, settings.paper_timeout) == (False, 2, 0)
    assert settings.temperature == 0.5
    with pytest.raises(ConfigError, match="retries must be int, got True"):
        load_settings(cwd=tmp_path, environ={}).with_flags(retries=True)
