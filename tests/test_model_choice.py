"""`--model auto`, expected speeds and `models add`: which model a run uses, and why."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pdfs import fixture_paper_pdf

from localdigest import models
from localdigest.cli import cli
from localdigest.errors import ModelError
from localdigest.models import ModelEntry, Rate

REGISTRY_TOML = """\
[models.default]
file = "default.gguf"
license = "Apache-2.0"
rank = 10

[models.ja]
description = "a Japanese-tuned model"
file = "ja.gguf"
license = "Japanese Licence"
rank = 50
"""


@pytest.fixture(scope="module")
def ja_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny GGUF, larger than the first (4 layers), so memory can tell them apart."""
    from tinymodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("ja") / "ja.gguf", seed=1, n_layer=4)


@pytest.fixture
def registry(tmp_path: Path) -> dict[str, ModelEntry]:
    path = tmp_path / "registry.toml"
    path.write_text(REGISTRY_TOML, encoding="utf-8")
    return models.load_registry(path)


def install(directory: Path, source: Path, name: str) -> Path:
    directory.mkdir(exist_ok=True)
    return Path(shutil.copy(source, directory / name))


def test_auto_prefers_the_japanese_model_over_the_default(
    tmp_path: Path, registry: dict[str, ModelEntry], tiny_model_path: Path, ja_model_path: Path
) -> None:
    directory = tmp_path / "models"
    install(directory, tiny_model_path, "default.gguf")
    assert models.choose(directory, registry).name == "default"

    install(directory, ja_model_path, "ja.gguf")
    chosen = models.choose(directory, registry, memory=64 * models.GB)
    assert (chosen.name, chosen.path) == ("ja", directory / "ja.gguf")
    assert chosen.choice == (
        "--model auto: the highest-ranked of 2 installed model(s) that fits in 64.0 GB of memory"
    )
    assert models.resolve("auto", directory, registry).name == "ja"


def test_auto_skips_models_that_do_not_fit_in_memory(
    tmp_path: Path, registry: dict[str, ModelEntry], tiny_model_path: Path, ja_model_path: Path
) -> None:
    directory = tmp_path / "models"
    small = install(directory, tiny_model_path, "default.gguf").stat().st_size
    large = install(directory, ja_model_path, "ja.gguf").stat().st_size
    assert large > small
    memory = models.memory_needed(small)
    assert models.choose(directory, registry, memory=memory).name == "default"
    with pytest.raises(ModelError, match=r"no installed model fits .*\(default needs about"):
        models.choose(directory, registry, memory=memory - 1)


def test_auto_takes_an_unregistered_model_only_when_no_registry_model_is_installed(
    tmp_path: Path, registry: dict[str, ModelEntry], tiny_model_path: Path
) -> None:
    directory = tmp_path / "models"
    with pytest.raises(ModelError, match="no model installed in .*models install default"):
        models.choose(directory, registry)
    install(directory, tiny_model_path, "own.gguf")
    assert models.choose(directory, registry).name == "own"
    install(directory, tiny_model_path, "default.gguf")
    assert models.choose(directory, registry).name == "default"


def test_auto_never_prefers_the_second_family_over_the_default(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    registry = models.load_registry()
    directory = tmp_path / "models"
    install(directory, tiny_model_path, registry["gemma-3-270m"].file)
    assert models.choose(directory, registry).name == "gemma-3-270m"  # the only one there
    install(directory, tiny_model_path, registry["default"].file)
    assert models.choose(directory, registry).name == "default"


def test_digest_auto_uses_the_japanese_model_and_says_so(
    tmp_path: Path,
    registry: dict[str, ModelEntry],
    tiny_model_path: Path,
    ja_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOCALDIGEST_REGISTRY", str(tmp_path / "registry.toml"))
    directory = tmp_path / "models"
    install(directory, tiny_model_path, "default.gguf")
    install(directory, ja_model_path, "ja.gguf")
    pdf = fixture_paper_pdf(tmp_path / "paper.pdf")
    out = tmp_path / "out"
    runner = CliRunner()
    flags = ["--questions", "1", "--threads", "1", "--retries", "0", "--format", "json"]
    models_dir = ["--models-dir", str(directory)]

    result = runner.invoke(cli, ["digest", str(pdf), "-o", str(out), *models_dir, *flags])
    assert result.exit_code == 0, result.output
    assert "model: ja (--model auto: the highest-ranked of 2 installed model(s)" in result.output
    (paper,) = json.loads((out / "digest.json").read_text(encoding="utf-8"))["papers"]
    assert paper["provenance"]["model"] == "ja"
    assert paper["provenance"]["runtime"]["model_choice"].startswith("--model auto:")
    ja_sha = hashlib.sha256(ja_model_path.read_bytes()).hexdigest()
    assert paper["provenance"]["model_sha256"] == ja_sha

    listing = runner.invoke(cli, ["models", *models_dir, "list"])
    assert listing.exit_code == 0, listing.output
    rows = {
        line[2:].split()[0]: line for line in listing.output.splitlines() if "installed" in line
    }
    assert rows["ja"].startswith("* ") and rows["default"].startswith("  ")
    assert "Japanese Licence" in rows["ja"]
    assert "digest uses: ja (--model auto" in listing.output
    measured = models.measured_rates()[ja_sha]  # the run's own generation rate
    assert re.search(rf"MB +{measured.tokens_per_second:.0f} tok/s", rows["ja"])  # measured
    assert re.search(r"MB +~\d+ tok/s", rows["default"])  # scaled from the ja model's rate


def test_expected_speed_goes_as_one_over_size() -> None:
    rates = {"a" * 64: Rate(size=1000, tokens=400, seconds=10.0)}
    assert models.expected_speed(1000, "a" * 64, rates) == models.Speed(40.0, "measured")
    assert models.expected_speed(2000, "b" * 64, rates) == models.Speed(20.0, "scaled")
    reference = models.REFERENCE_RATE
    assert models.expected_speed(reference.size * 2, None, {}) == models.Speed(
        reference.tokens_per_second / 2, "reference"
    )
    assert models.expected_speed(None, None, rates) is None


def test_approx_size_counts_for_speed_and_memory() -> None:
    entry = ModelEntry(name="x", file="x.gguf", approx_size="1.71 GB")
    assert models.approx_bytes(entry) == 1_710_000_000
    assert models.approx_bytes(ModelEntry(name="y", file="y.gguf")) is None


def test_models_add_copies_and_verifies(tmp_path: Path, tiny_model_path: Path) -> None:
    sha = hashlib.sha256(tiny_model_path.read_bytes()).hexdigest()
    directory = tmp_path / "models"
    runner = CliRunner()
    args = ["models", "--models-dir", str(directory), "add", str(tiny_model_path)]

    wrong = runner.invoke(cli, [*args, "--sha256", "0" * 64])
    assert wrong.exit_code == 1
    assert "checksum mismatch" in str(wrong.exception) and "nothing was installed" in str(
        wrong.exception
    )
    assert list(directory.iterdir()) == []  # no partial file left behind

    result = runner.invoke(cli, [*args, "--sha256", sha.upper()])
    assert result.exit_code == 0, result.output
    target = directory / tiny_model_path.name
    assert result.stdout.strip() == str(target)
    assert "architecture llama (llama.cpp loads it), trained context 4096" in result.stderr
    assert models.cached_sha256(target) == sha  # verified once: `models list` says so


def test_models_add_checks_the_registry_checksum(tmp_path: Path, tiny_model_path: Path) -> None:
    named = install(tmp_path / "carried", tiny_model_path, "default.gguf")
    registry = {"default": ModelEntry(name="default", file="default.gguf", sha256="f" * 64)}
    with pytest.raises(ModelError, match="the registry expects ffff"):
        models.add(named, tmp_path / "models", registry=registry)
    (tmp_path / "broken.gguf").write_bytes(b"GGUF\x03\x00")
    with pytest.raises(ModelError, match="truncated or corrupt"):
        models.add(tmp_path / "broken.gguf", tmp_path / "models", registry=registry)
