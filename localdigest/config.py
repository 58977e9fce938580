"""Settings with precedence: command-line flag > LOCALDIGEST_* environment > localdigest.toml > default.

Each setting declares a click type, and that one type checks it wherever it comes from: the
command-line option is declared with it and the environment and config-file values are converted
by it (`check`), so a range, a boolean or a data directory is refused with the same one-line
message and exit status 2 from all three. Click's own `auto_envvar_prefix` and `default_map`
were not used: they name variables per command (LOCALDIGEST_DIGEST_RETRIES, not the documented
LOCALDIGEST_RETRIES) and only reach settings that have a flag, while intro or punctuation
have none.

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

import click

from localdigest import paths
from localdigest.errors import ConfigError, TemplateError

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


DEFAULT_MIN_SCORE = -3.0  # calibrated: benchmarks/README.md, "The score threshold"

# The digest formats `render` writes (templates/digest.<format with - as .>.j2, and json).
DIGEST_FORMATS = ("txt", "md", "html", "json", "bilingual-txt", "bilingual-md")


class _Formats(click.ParamType):
    """A comma-separated list of built-in digest formats."""

    name = "formats"
    known = DIGEST_FORMATS

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        given = [f.strip() for f in str(value).split(",") if f.strip()]
        unknown = [f for f in given if f not in self.known]
        if unknown or not given:
            self.fail(
                f"{str(value)!r}: use a comma-separated list of {', '.join(self.known)}", param, ctx
            )
        return ",".join(given)


class _PromptDirectory(click.ParamType):
    """A directory of prompt templates with every file and at least one question aspect."""

    name = "directory"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not value:
            return ""
        from localdigest.prompts import PromptSet

        try:
            PromptSet(Path(value)).aspects  # noqa: B018 - reading them is the check
        except TemplateError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


def _setting(default: Any, kind: click.ParamType, help_: str) -> Any:
    """A setting's default, its click type (the one check for flag, environment and config
    file alike) and its help."""
    return field(default=default, metadata={"help": help_, "type": kind})


@dataclass(frozen=True)
class Settings:
    """Effective settings. Zero/negative sentinels mean "decide automatically" where noted."""

    model: str = _setting(
        "auto",
        click.STRING,
        "auto (best installed model that fits memory), registry name or GGUF path",
    )
    models_dir: str = _setting("", click.STRING, "where GGUF files live (empty: auto)")
    ctx: int = _setting(0, click.IntRange(0), "context size in tokens (0: what the tasks need)")
    threads: int = _setting(0, click.IntRange(0), "CPU threads (0: physical cores)")
    gpu_layers: int = _setting(-1, click.IntRange(-1), "layers on GPU (-1: all if supported)")
    seed: int = _setting(42, click.INT, "sampling seed")
    temperature: float = _setting(
        0.0, click.FloatRange(0, 2), "first try's temperature (0: greedy; retries rise)"
    )
    max_tokens: int = _setting(1024, click.IntRange(1), "cap on tokens per generation")
    questions: int = _setting(10, click.IntRange(1, 30), "Q&A pairs per paper (an upper bound)")
    glossary: bool = _setting(True, click.BOOL, "inject standard Japanese ML terms")
    # Calibrated on corpus papers by reader verdicts (issue 22, benchmarks/README.md).
    min_score: float = _setting(
        DEFAULT_MIN_SCORE,
        click.FLOAT,
        "the model's score below which the English sentence is shown instead of its translation",
    )
    max_pages: int = _setting(100, click.IntRange(1), "pages read per PDF (bounds work)")
    # 4, not 2: on 5 corpus papers, answers carrying a name or number of the paper went from 76%
    # to 86% (seed 42) and from 84% to 90% (seed 7), for 20% more wall time (a retry
    # evaluates one token of its parked prompt and only generates).
    retries: int = _setting(4, click.IntRange(0, 5), "retries of a generation that fails checks")
    parallel: int = _setting(0, click.IntRange(0), "answers decoded in parallel (0: auto)")
    # Generous: a paper takes 2-3 minutes on a 2-core CPU; only a stuck one reaches this.
    paper_timeout: int = _setting(
        1800, click.IntRange(0), "seconds a paper may take before it is stopped (0: no limit)"
    )
    formats: str = _setting("txt,md,html,json", _Formats(), "digest output formats")
    prompts: str = _setting("", _PromptDirectory(), "prompt template directory override")
    punctuation: str = _setting(
        "standard", click.Choice(["standard", "reference"]), "standard (。、) or reference (.)"
    )
    intro: str = _setting(DEFAULT_INTRO, click.STRING, "introduction paragraph")
    order: str = _setting(
        "date", click.Choice(["date", "given"]), "paper order: date (newest first) or given"
    )
    store: str = _setting("", click.STRING, "record store directory (empty: OUTDIR/records)")

    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def with_flags(self, **flags: Any) -> Settings:
        """Apply command-line flags; None means "not given" and keeps the lower layers.

        Raises:
            ConfigError: an unknown setting, or a value its type refuses.
        """
        given = {k: v for k, v in flags.items() if v is not None}
        unknown = set(given) - setting_names()
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        checked = {k: check(k, v, "command line") for k, v in given.items()}
        sources = dict(self.sources) | {k: "command line" for k in given}
        return dataclasses.replace(self, **checked, sources=sources)

    def explain(self) -> list[tuple[str, Any, str]]:
        """(name, value, source) for every setting, for `localdigest config`."""
        return [
            (n, getattr(self, n), self.sources.get(n, "default")) for n in sorted(setting_names())
        ]


def setting_names() -> set[str]:
    return {f.name for f in fields(Settings) if f.name != "sources"}


def setting_type(name: str) -> click.ParamType:
    """The click type of setting `name`: command-line options declare it, so that a flag is
    checked exactly as the environment and the config file are."""
    kind: click.ParamType = Settings.__dataclass_fields__[name].metadata["type"]
    return kind


_NATIVE = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}


def check(name: str, raw: Any, origin: str) -> Any:
    """The value of setting `name` given as `raw` by `origin`, converted and checked.

    Text (environment, flags) is parsed by the setting's click type; a config file's typed
    value must already be of the setting's kind (`retries = 2.5` is not silently 2).

    Raises:
        ConfigError: one line naming the origin, the setting and what is wrong.
    """
    kind = type(getattr(Settings(), name))
    if not isinstance(raw, str) and type(raw) not in _NATIVE[kind]:
        raise ConfigError(f"{origin}: {name} must be {kind.__name__}, got {raw!r}")
    try:
        return setting_type(name).convert(raw, None, None)
    except click.BadParameter as exc:
        raise ConfigError(f"{origin}: {name}: {exc.message}") from None


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
            values[name] = check(name, raw, str(path))
            sources[name] = str(path)
    for name in setting_names():
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = check(name, environ[env_name], env_name)
            sources[name] = f"environment ({env_name})"
    return Settings(**values, sources=sources)
