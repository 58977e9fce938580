"""Settings with precedence: command-line flag > LOCALDIGEST_* environment > localdigest.toml > default.

`localdigest config` shows each effective value and where it came from.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from localdigest import paths
from localdigest.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CONFIG_FILE_NAME = "localdigest.toml"
ENV_PREFIX = "LOCALDIGEST_"

DEFAULT_INTRO = (
    "ここでは、今週の論文をローカルLLMが生成した日本語の概要とQ&Aで紹介します。"
    "論文を読む前に要点を把握し、気になる論文を選ぶのに役立ててください。"
    "内容は自動生成のため、数値や主張は原文で確認してください。"
)


@dataclass(frozen=True)
class Settings:
    """Effective settings. Zero/negative sentinels mean "decide automatically" where noted."""

    model: str = field(
        default="auto",
        metadata={
            "help": "auto (best installed model that fits memory), registry name or GGUF path"
        },
    )
    models_dir: str = field(default="", metadata={"help": "where GGUF files live (empty: auto)"})
    ctx: int = field(
        default=0, metadata={"help": "context size in tokens (0: what the paper needs)"}
    )
    threads: int = field(default=0, metadata={"help": "CPU threads (0: physical cores)"})
    gpu_layers: int = field(default=-1, metadata={"help": "layers on GPU (-1: all if supported)"})
    seed: int = field(default=42, metadata={"help": "sampling seed"})
    temperature: float = field(default=0.2, metadata={"help": "sampling temperature"})
    max_tokens: int = field(default=1024, metadata={"help": "cap on tokens per generation"})
    questions: int = field(default=10, metadata={"help": "Q&A pairs per paper"})
    paper_tokens: int = field(
        default=6000, metadata={"help": "tokens of paper text given verbatim to the model"}
    )
    glossary: bool = field(default=True, metadata={"help": "inject standard Japanese ML terms"})
    max_pages: int = field(default=100, metadata={"help": "pages read per PDF (bounds work)"})
    # 4, not 2: on 5 corpus papers, answers carrying a name or number of the paper went from 76%
    # to 86% (seed 42) and from 84% to 90% (seed 7), for 20% more wall time (a retry
    # evaluates one token of its parked prompt and only generates).
    retries: int = field(default=4, metadata={"help": "retries of a generation that fails checks"})
    parallel: int = field(default=0, metadata={"help": "answers decoded in parallel (0: auto)"})
    formats: str = field(default="txt,md,html,json", metadata={"help": "digest output formats"})
    prompts: str = field(default="", metadata={"help": "prompt template directory override"})
    punctuation: str = field(
        default="standard", metadata={"help": "standard (。、) or reference (.)"}
    )
    intro: str = field(default=DEFAULT_INTRO, metadata={"help": "introduction paragraph"})
    order: str = field(
        default="date", metadata={"help": "paper order: date (newest first) or given"}
    )
    store: str = field(
        default="", metadata={"help": "record store directory (empty: OUTDIR/records)"}
    )

    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def with_flags(self, **flags: Any) -> Settings:
        """Apply command-line flags; None means "not given" and keeps the lower layers."""
        given = {k: v for k, v in flags.items() if v is not None}
        unknown = set(given) - setting_names()
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        sources = dict(self.sources) | {k: "command line" for k in given}
        return dataclasses.replace(self, **given, sources=sources)

    def explain(self) -> list[tuple[str, Any, str]]:
        """(name, value, source) for every setting, for `localdigest config`."""
        return [
            (n, getattr(self, n), self.sources.get(n, "default")) for n in sorted(setting_names())
        ]


def setting_names() -> set[str]:
    return {f.name for f in fields(Settings) if f.name != "sources"}


def _coerce(name: str, raw: Any, origin: str) -> Any:
    kind = type(getattr(Settings(), name))
    try:
        if kind is bool:
            return raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes", "on"}
        return kind(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {name} must be {kind.__name__}, got {raw!r}") from None


def config_files(cwd: Path | None = None) -> list[Path]:
    """Config files in increasing precedence: user config dir, then the working directory."""
    cwd = cwd or Path.cwd()
    candidates = [paths.config_dir() / CONFIG_FILE_NAME, cwd / CONFIG_FILE_NAME]
    return [p for p in candidates if p.is_file()]


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    table = data.get("localdigest", data)
    names = setting_names()
    for key in table:
        if key.replace("-", "_") not in names:
            raise ConfigError(f"{path}: unknown setting '{key}'")
    return {k.replace("-", "_"): v for k, v in table.items()}


def load_settings(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, overlaid by config files, overlaid by LOCALDIGEST_* environment variables."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for path in config_files(cwd):
        for name, raw in _read_config_file(path).items():
            values[name] = _coerce(name, raw, str(path))
            sources[name] = str(path)
    for name in setting_names():
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _coerce(name, environ[env_name], env_name)
            sources[name] = f"environment ({env_name})"
    return Settings(**values, sources=sources)
