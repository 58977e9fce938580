"""Bundle pieces without installing anything: dependency closure, repacking an installed
distribution into a wheel, and the refusals. tests/test_install.py installs a whole bundle."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from localdigest import bundle
from localdigest.cli import main
from localdigest.errors import BundleError


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def installed(site: Path, files: dict[str, bytes], *, direct_url: dict | None = None) -> Path:
    """An installed distribution 'demo-pkg' 1.0 in `site`, as pip leaves it (RECORD and all)."""
    info = "demo_pkg-1.0.dist-info"
    files = {
        **files,
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nTag: py2-none-any\nTag: py3-none-any\n",
        f"{info}/INSTALLER": b"pip\n",
        f"{info}/entry_points.txt": b"[console_scripts]\ndemo = demo_pkg:main\n",
        "../../../bin/demo": b"#!/venv/bin/python\nimport demo_pkg\n",
        "demo_pkg/__pycache__/__init__.cpython-311.pyc": b"compiled",
    }
    if direct_url is not None:
        files[f"{info}/direct_url.json"] = json.dumps(direct_url).encode()
    rows = []
    for name, data in files.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append(f"{name},{_hash(data)},{len(data)}")
    (site / info / "RECORD").write_text("\n".join([*rows, f"{info}/RECORD,,", ""]))
    return site / info


def test_repack_rebuilds_the_wheel_from_installed_files(tmp_path: Path) -> None:
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    info = installed(site, {"demo_pkg/__init__.py": b"def main(): pass\n"})
    wheel = bundle.repack(metadata.PathDistribution(info), tmp_path)
    assert wheel.name == "demo_pkg-1.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        record = list(csv.reader(io.StringIO(archive.read(names[-1]).decode())))
        for name, digest, size in record[:-1]:
            assert _hash(archive.read(name)) == digest and int(size) == len(archive.read(name))
    # the script pip writes from entry_points.txt, .pyc files and INSTALLER are left out
    assert names == [
        "demo_pkg/__init__.py",
        "demo_pkg-1.0.dist-info/METADATA",
        "demo_pkg-1.0.dist-info/WHEEL",
        "demo_pkg-1.0.dist-info/entry_points.txt",
        "demo_pkg-1.0.dist-info/RECORD",
    ]


def test_repack_refuses_changed_files_and_editable_installs(tmp_path: Path) -> None:
    info = installed(tmp_path / "a", {"demo_pkg/__init__.py": b"original\n"})
    (tmp_path / "a" / "demo_pkg" / "__init__.py").write_text("edited\n")
    with pytest.raises(BundleError, match="__init__.py changed since demo-pkg was installed"):
        bundle.repack(metadata.PathDistribution(info), tmp_path)
    assert not list(tmp_path.glob("*.whl"))  # no half-written wheel

    editable = {"url": "file:///src", "dir_info": {"editable": True}}
    info = installed(tmp_path / "b", {"demo.pth": b"/src\n"}, direct_url=editable)
    with pytest.raises(BundleError, match="demo-pkg is an editable install"):
        bundle.repack(metadata.PathDistribution(info), tmp_path)


def test_dependencies_follow_markers_extras_and_versions() -> None:
    found = [d.metadata["Name"].lower() for d in bundle.dependencies(["jinja2>=3", "click"])]
    assert found == ["click", "jinja2", "markupsafe"]  # markupsafe: jinja2's own dependency
    assert bundle.dependencies(["click; python_version < '3'"]) == []
    with pytest.raises(BundleError, match="not-a-real-package-x is needed but not installed"):
        bundle.dependencies(["not-a-real-package-x"])
    with pytest.raises(BundleError, match=r"click<1 is needed but .* is installed here"):
        bundle.dependencies(["click<1"])


def test_bundle_refuses_a_non_empty_directory_and_conflicting_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        main(["bundle", str(tmp_path), "--no-model"])
    assert exit_info.value.code == 2
    assert "not an empty directory: give a new one" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["bundle", str(tmp_path / "new"), "--no-model", "--model", "x"])
    assert exit_info.value.code == 2
    assert "--model and --no-model exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
