"""The package as users install it, outside the checkout, with pip cut off from the network.

A wheel built from the sdist (as from a clean clone) and an offline bundle are each installed
into a fresh virtual environment and run from another directory: this catches any file the
package forgets. Their dependencies come from the bundle's wheels, which are rebuilt from this
environment's installed files, so llama-cpp-python is never compiled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from localdigest import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN = REPO_ROOT / "tests" / "golden"
EXAMPLE_PDF = REPO_ROOT / "examples" / "localdigest-design.pdf"
# The tiny test model's window is 4096 tokens; a real paper's verbatim text must fit in it.
TINY_RUN = ["--questions", "2", "--retries", "0", "--threads", "1"]

pytestmark = pytest.mark.slow

Run = Callable[..., subprocess.CompletedProcess[str]]


def offline_env(home: Path, venv: Path | None = None) -> dict[str, str]:
    """The environment of a user on an air-gapped machine: own home, no pip index or proxy
    that works, none of this session's pip or localdigest settings, and no PYTHONPATH (a
    checkout on it would be imported instead of the installed copy)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "LOCALDIGEST_")) and k != "PYTHONPATH"
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        PIP_NO_INDEX="1",
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        http_proxy="http://127.0.0.1:9",  # any connection pip tries is refused
        https_proxy="http://127.0.0.1:9",
        LOCALDIGEST_PAPER_TOKENS="1000",
    )
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
        env["VIRTUAL_ENV"] = str(venv)
    return env


def runner(env: dict[str, str], cwd: Path) -> Run:
    def run(*command: str | Path, shell: bool = False) -> subprocess.CompletedProcess[str]:
        args: str | list[str] = str(command[0]) if shell else [str(c) for c in command]
        result = subprocess.run(
            args, cwd=cwd, env=env, shell=shell, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        return result

    return run


def fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Path:
    """`localdigest bundle` (through `python -m localdigest`) with the tiny model."""
    home = tmp_path_factory.mktemp("maker-home")
    out = tmp_path_factory.mktemp("bundle") / "localdigest-bundle"
    run = runner(offline_env(home), cwd=home)
    made = run(sys.executable, "-m", "localdigest", "bundle", out, "--model", tiny_model_path)
    assert "INSTALL.txt" in made.stdout
    return out


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from that sdist, as `python -m build` makes them."""
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), REPO_ROOT]
    subprocess.run(command, check=True, capture_output=True)
    return out


def test_wheel_and_sdist_carry_templates_and_registry(dist_dir: Path) -> None:
    (wheel,) = dist_dir.glob("localdigest-*.whl")
    (sdist,) = dist_dir.glob("localdigest-*.tar.gz")
    templates = sorted(
        p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("templates/**/*") if p.is_file()
    )
    assert "templates/digest.html.j2" in templates and "templates/prompts/verify.j2" in templates
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"localdigest-{__version__}.dist-info/METADATA").decode()
    assert {f"localdigest/data/{t}" for t in templates} <= names
    assert "localdigest/data/registry.toml" in names
    assert "localdigest/data/glossary_ja.tsv" in names
    assert not [n for n in names if n.endswith(".gguf") or n.startswith(("templates/", "models/"))]
    assert "License-Expression: AGPL-3.0-or-later" in metadata
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    assert {*templates, "models/registry.toml", "LICENSE", "pyproject.toml"} <= members


def test_installed_wheel_runs_outside_the_checkout(
    dist_dir: Path, bundle_dir: Path, tiny_model_path: Path, tmp_path: Path
) -> None:
    (wheel,) = dist_dir.glob("localdigest-*.whl")
    venv = fresh_venv(tmp_path / "venv")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = offline_env(tmp_path / "home", venv)
    run = runner(env, cwd=work)
    deps = bundle_dir / "wheels"
    run(venv / "bin" / "python", "-m", "pip", "install", "--find-links", deps, wheel)

    imported = run("python", "-c", "import localdigest; print(localdigest.__file__)").stdout
    assert imported.startswith(str(venv)), imported
    assert run("localdigest", "--version").stdout.strip() == f"localdigest, version {__version__}"
    assert __version__ in run("python", "-m", "localdigest", "--version").stdout
    listing = run("localdigest", "models", "list").stdout
    assert "default" in listing and "tinyswallow-1.5b" in listing and "digest uses:" in listing
    models_dir = tmp_path / "home" / ".local" / "share" / "localdigest" / "models"
    assert run("localdigest", "models", "path", "default").stdout.startswith(str(models_dir))

    shutil.copy(GOLDEN / "input-records.json", work / "records.json")
    for fmt in ("txt", "html"):
        rendered = run("localdigest", "render", "records.json", "-t", fmt).stdout
        golden = (GOLDEN / f"digest.{fmt}").read_text(encoding="utf-8")
        assert rendered.replace(f"localdigest {__version__}", "localdigest VERSION") == golden

    shutil.copy(EXAMPLE_PDF, work / "paper.pdf")
    run("localdigest", "digest", "paper.pdf", "-o", "out", "--model", tiny_model_path, *TINY_RUN)
    (paper,) = json.loads((work / "out" / "digest.json").read_text(encoding="utf-8"))["papers"]
    assert (paper["status"], paper["provenance"]["model"]) == ("ok", "tiny")
    # every stage ran on the packaged prompts (a random-weight model seldom names a sentence,
    # so the Q&A itself may be empty)
    assert paper["abstract_ja"] and paper["abstract_sentences"]
    assert {"abstract", "summary", "select"} <= set(paper["stats"]["stages"])
    assert "<html" in (work / "out" / "digest.html").read_text(encoding="utf-8")

    # an installed copy (pip, pipx) bundles itself: its own wheel is rebuilt like the others
    run("localdigest", "bundle", "again", "--no-model")
    rebundled = {p.name for p in (work / "again" / "wheels").iterdir()}
    assert wheel.name in rebundled and rebundled == {p.name for p in deps.iterdir()}


def test_bundle_installs_offline_and_digests(bundle_dir: Path, tmp_path: Path) -> None:
    wheels = sorted(p.name for p in (bundle_dir / "wheels").iterdir())
    assert [w for w in wheels if w.startswith("llama_cpp_python-")]
    assert all(w.endswith(".whl") for w in wheels)  # no source to compile on the other side
    instructions = (bundle_dir / "INSTALL.txt").read_text(encoding="utf-8")
    commands = [line.strip() for line in instructions.splitlines() if line.startswith("  ")]
    assert len(commands) == 2 and "--no-index" in commands[0], instructions
    assert commands[1].startswith("localdigest models add models/tiny.gguf --sha256 ")

    venv = fresh_venv(tmp_path / "venv")
    env = offline_env(tmp_path / "home", venv)
    for command in commands:
        runner(env, cwd=bundle_dir)(command, shell=True)

    work = tmp_path / "elsewhere"
    work.mkdir()
    run = runner(env, cwd=work)
    shutil.copy(EXAMPLE_PDF, work / "paper.pdf")
    result = run("localdigest", "digest", "paper.pdf", "-o", "out", *TINY_RUN)
    assert "model: tiny (--model auto:" in result.stderr
    (paper,) = json.loads((work / "out" / "digest.json").read_text(encoding="utf-8"))["papers"]
    assert (paper["status"], paper["provenance"]["model"]) == ("ok", "tiny")
    assert paper["provenance"]["runtime"]["model_choice"].startswith("--model auto:")
    assert "* tiny " in run("localdigest", "models", "list").stdout
