"""Where localdigest finds its templates, registry and models, in a checkout or an installed copy."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"


def checkout_root() -> Path | None:
    """The repository root when running from a checkout (editable install), else None.

    A built package carries templates and the registry in localdigest/data/ (pyproject's
    force-include); a checkout keeps them at the top level, where they are edited.
    """
    if (DATA_DIR / "registry.toml").is_file():
        return None
    root = PACKAGE_DIR.parent
    if (root / "templates").is_dir() and (root / "models" / "registry.toml").is_file():
        return root
    return None


def templates_dir() -> Path:
    root = checkout_root()
    return root / "templates" if root else DATA_DIR / "templates"


def registry_path() -> Path:
    """The model registry: LOCALDIGEST_REGISTRY (a team's own list of models), else the one
    shipped with localdigest. An environment variable, so worker processes see it too."""
    if env := os.environ.get("LOCALDIGEST_REGISTRY"):
        return Path(env)
    root = checkout_root()
    return root / "models" / "registry.toml" if root else DATA_DIR / "registry.toml"


def config_dir() -> Path:
    """The user config directory (XDG), overridable for tests and portable installs."""
    if env := os.environ.get("LOCALDIGEST_CONFIG_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "localdigest"


def cache_dir() -> Path:
    """The user cache directory (XDG): verified checksums, metadata indexes."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "localdigest"


def default_models_dir() -> Path:
    """The checkout's models/ when there is one, else the user data directory (XDG).

    The `models_dir` setting (LOCALDIGEST_MODELS_DIR, --models-dir) overrides both.
    """
    root = checkout_root()
    if root:
        return root / "models"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "localdigest" / "models"
