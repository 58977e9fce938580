"""Offline bundle: everything an air-gapped machine needs to install localdigest and digest papers.

    OUT/wheels/       localdigest and each of its dependencies, as wheels for this Python and platform
    OUT/models/FILE   the model, verified (unless the bundle carries none)
    OUT/INSTALL.txt   the two commands that install both with no network

The dependencies' wheels are rebuilt from their installed files, as each one's RECORD lists and
hashes them, rather than downloaded: the bundle carries exactly what runs here, including the
llama-cpp-python compiled on this machine (the package index has only its source), and making it
needs no network.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import date
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from localdigest import __version__, models, paths
from localdigest.errors import BundleError, UsageError

# Written by the installer, not part of the wheel (RECORD is written anew)
_INSTALLER_FILES = {
    "INSTALLER",
    "REQUESTED",
    "direct_url.json",
    "RECORD",
    "RECORD.jws",
    "RECORD.p7s",
}


def make_bundle(out: Path, model: models.ResolvedModel | None) -> str:
    """Write an offline bundle into `out`, a new or empty directory.

    Args:
        out: where to write it.
        model: the model to carry, verified against the registry's sha256 first; None for none.

    Returns:
        The text of its INSTALL.txt.

    Raises:
        UsageError: `out` holds files. ModelError: the model is missing or fails verification.
        BundleError: localdigest's wheel cannot be built or a dependency cannot be packed.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} is not an empty directory: give a new one for the bundle")
    sha256 = models.verify(model.path, model.entry) if model else None
    wheels = collect_wheels(out / "wheels")
    copied = None
    if model:
        copied = out / "models" / model.path.name
        copied.parent.mkdir()
        shutil.copyfile(model.path, copied)
    instructions = install_text(wheels, copied, sha256)
    (out / "INSTALL.txt").write_text(instructions, encoding="utf-8")
    return instructions


def collect_wheels(dest: Path) -> list[Path]:
    """Wheels of localdigest and every distribution it needs here, written into `dest`.

    Raises:
        BundleError: the wheel build failed, or a dependency is missing or cannot be packed.
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = paths.checkout_root()
    own = _build_wheel(root, dest) if root else repack(metadata.distribution("localdigest"), dest)
    return [own, *(repack(dist, dest) for dist in dependencies(_requires_of(own)))]


def _build_wheel(root: Path, dest: Path) -> Path:
    """localdigest's wheel built from the checkout (an editable install is only a link to it)."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dest)]
    if importlib.util.find_spec("hatchling"):  # the test and dev extras install the backend
        command.append("--no-build-isolation")
    result = subprocess.run([*command, str(root)], capture_output=True, text=True, check=False)
    built = sorted(dest.glob("localdigest-*.whl"))
    if result.returncode != 0 or not built:
        tail = " / ".join((result.stdout + result.stderr).strip().splitlines()[-3:])
        raise BundleError(f"cannot build localdigest's wheel from {root}: {tail}")
    return built[0]


def _requires_of(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's metadata."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode("utf-8")
    return Parser().parsestr(text, headersonly=True).get_all("Requires-Dist") or []


def dependencies(requires: list[str]) -> list[metadata.Distribution]:
    """The installed distributions that `requires` needs on this Python and platform, recursively
    (environment markers and extras evaluated), sorted by name.

    Raises:
        BundleError: a needed distribution is not installed, or its version does not fit.
    """
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, str]] = set()
    pending = [(Requirement(line), "") for line in requires]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name not in found:
            try:
                found[name] = metadata.distribution(requirement.name)
            except metadata.PackageNotFoundError:
                raise BundleError(
                    f"{requirement} is needed but not installed here: install it and bundle again"
                ) from None
        dist = found[name]
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise BundleError(f"{requirement} is needed but {dist.version} is installed here")
        for wanted in ("", *sorted(requirement.extras)):
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                pending += [(Requirement(line), wanted) for line in dist.requires or []]
    return [found[name] for name in sorted(found)]


def _wheel_tags(wheel_text: str) -> str:
    """The compressed tag set of a wheel's file name from its WHEEL file's Tag lines."""
    tags = [line.partition(":")[2].strip().split("-") for line in wheel_text.splitlines()
            if line.startswith("Tag:")]  # fmt: skip
    return "-".join(".".join(dict.fromkeys(tag[i] for tag in tags)) for i in range(3))


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def repack(dist: metadata.Distribution, dest: Path) -> Path:
    """Rebuild the wheel an installed distribution came from, out of its installed files.

    RECORD says which files are the distribution's and what they hashed to at install time; a
    file that changed since is an error. Compiled .pyc files, the installer's own files and the
    console scripts (pip writes those anew from entry_points.txt) are left out.

    Raises:
        BundleError: an editable install, no RECORD or WHEEL file, or a file changed since.
    """
    name = dist.metadata["Name"]
    direct_url = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct_url.get("dir_info", {}).get("editable"):
        raise BundleError(f"{name} is an editable install: install it from a wheel to bundle it")
    wheel_text, files = dist.read_text("WHEEL"), dist.files
    if not wheel_text or not files:
        raise BundleError(f"cannot pack {name}: it has no WHEEL or RECORD file")
    info_dir = next(file.parent for file in files if file.name == "RECORD")
    data_dir = f"{str(info_dir).removesuffix('.dist-info')}.data"
    scripts = {ep.name for ep in dist.entry_points if ep.group.endswith("_scripts")}
    stem = f"{re.sub(r'[-_.]+', '_', name).lower()}-{dist.version.replace('-', '_')}"
    target = dest / f"{stem}-{_wheel_tags(wheel_text)}.whl"
    rows: list[tuple[str, str, str]] = []
    try:
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as wheel:
            # the .dist-info directory goes last, as in a built wheel
            for file in sorted(files, key=lambda f: (f.parent == info_dir, str(f))):
                source = Path(str(file.locate()))
                if "__pycache__" in file.parts or file.suffix == ".pyc":
                    continue
                if file.parent == info_dir and file.name in _INSTALLER_FILES:
                    continue
                if file.parts[0] == "..":  # installed outside site-packages
                    if Path(file.name).stem in scripts:
                        continue
                    outside = os.path.relpath(os.path.normpath(source), sys.prefix)
                    arcname = f"{data_dir}/data/{Path(outside).as_posix()}"
                else:
                    arcname = file.as_posix()
                digest = _write_member(wheel, source, arcname)
                if file.hash and file.hash.mode == "sha256" and file.hash.value != _b64(digest):
                    raise BundleError(
                        f"{source} changed since {name} was installed: reinstall {name}"
                    )
                rows.append((arcname, f"sha256={_b64(digest)}", str(source.stat().st_size)))
            rows.append((f"{info_dir.as_posix()}/RECORD", "", ""))
            record = io.StringIO()
            csv.writer(record, lineterminator="\n").writerows(rows)
            wheel.writestr(rows[-1][0], record.getvalue())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def _write_member(wheel: zipfile.ZipFile, source: Path, arcname: str) -> bytes:
    """Stream one file into the wheel, keeping its permissions; return its sha256."""
    stat = source.stat()
    info = zipfile.ZipInfo(arcname, time.localtime(max(stat.st_mtime, 315532800))[:6])
    info.external_attr = (stat.st_mode & 0xFFFF) << 16  # executable bits survive the install
    info.compress_type = zipfile.ZIP_DEFLATED
    digest = hashlib.sha256()
    with source.open("rb") as src, wheel.open(info, "w") as out:
        while chunk := src.read(models.CHUNK):
            out.write(chunk)
            digest.update(chunk)
    return digest.digest()


def install_text(wheels: list[Path], model: Path | None, sha256: str | None) -> str:
    """INSTALL.txt: what the bundle is for and the two commands that install it offline."""
    python = f"{platform.python_implementation()} {sys.version_info[0]}.{sys.version_info[1]}"
    lines = [
        f"localdigest {__version__} offline bundle, made {date.today()} for {python} on "
        f"{platform.system()} {platform.machine()}.",
        f"It installs with no network on a machine with {python} and the same platform.",
        "",
        "In this directory, in a virtual environment (python3 -m venv ~/localdigest-env, then",
        ". ~/localdigest-env/bin/activate):",
        "",
        "  python -m pip install --no-index --find-links wheels localdigest",
    ]
    if model:
        lines += [
            f"  localdigest models add models/{model.name} --sha256 {sha256}",
            "",
            "Then: localdigest digest papers/ -o out/   (--model auto uses the model added above)",
        ]
    else:
        lines += ["", "No model in this bundle: bring one with 'localdigest models add FILE'."]
    lines += ["", f"wheels/ ({len(wheels)}): {' '.join(wheel.name for wheel in wheels)}", ""]
    return "\n".join(lines)
