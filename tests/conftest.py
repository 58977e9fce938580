"""Shared fixtures. Every test gets its own home, config and data directories."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT.parent / "shared" / "corpus"


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
