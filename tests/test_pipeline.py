"""The record key of `digest` runs: every input that shapes a digest is in it, by content."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from test_metadata import SNAPSHOT_RECORD

from localdigest import glossary, models, paths, pipeline
from localdigest.config import Settings
from localdigest.errors import ModelError
from localdigest.store import record_key

SHA = "0" * 64


@pytest.fixture
def settings(tiny_model_path: Path) -> Settings:
    return Settings(model=str(tiny_model_path))


def key(settings: Settings, metadata_file: Path | None = None) -> str:
    fingerprint, _, _ = pipeline.worker_setup(
        settings, str(metadata_file) if metadata_file else None
    )
    return record_key(SHA, fingerprint)


def write_snapshot(path: Path, **changes: Any) -> Path:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(SNAPSHOT_RECORD | changes) + "\n", encoding="utf-8")
    return path


def test_metadata_file_is_keyed_by_content_not_path(settings: Settings, tmp_path: Path) -> None:
    here = write_snapshot(tmp_path / "a" / "snapshot.json")
    there = tmp_path / "b" / "copy.json"
    there.parent.mkdir()
    shutil.copy(here, there)  # same content elsewhere
    assert key(settings, here) == key(settings, there) != key(settings)
    write_snapshot(there, title="A corrected title")  # same path, new content
    assert key(settings, there) != key(settings, here)


def test_glossary_content_is_in_the_key(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unused = settings.with_flags(glossary=False)
    before = key(settings), key(unused)
    edited = tmp_path / "glossary_ja.tsv"
    edited.write_bytes(glossary.GLOSSARY_FILE.read_bytes() + "token\tトークン\n".encode())
    monkeypatch.setattr(glossary, "GLOSSARY_FILE", edited)
    assert key(settings) != before[0]
    assert key(unused) == before[1]  # a glossary the prompts do not use is not in the key


def test_prompts_and_aspects_are_in_the_key(settings: Settings, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(paths.templates_dir() / "prompts", prompts)
    same = key(settings.with_flags(prompts=str(prompts)))
    assert same == key(settings)
    with (prompts / "aspects.tsv").open("a", encoding="utf-8") as fh:
        fh.write(
            "code\tコードは公開されているか？\ta code release\tcode,github\t-\t-\tIs the code public?\t-\n"
        )
    assert key(settings.with_flags(prompts=str(prompts))) != same


def test_model_is_keyed_by_its_sha256_never_its_name(settings: Settings) -> None:
    fingerprint, _, _ = pipeline.worker_setup(settings)
    sha256 = models.sha256_of(Path(settings.model))
    assert fingerprint["model_sha256"] == sha256 != Path(settings.model).name
    with pytest.raises(ModelError, match="no sha256"):
        pipeline.make_worker(settings, None, None, {"name": "tiny"})
