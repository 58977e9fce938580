"""The CLI's contract: help and version, one-line errors with exit codes, lazy heavy imports,
and settings precedence (flag > environment > config file > default)."""

from __future__ import annotations

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
        ("questions = 'x'\n", "questions must be int"),
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
