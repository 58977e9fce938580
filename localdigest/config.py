"""Settings with precedence: command-line flag > LOCALDIGEST_* environment > localdigest.toml > default.

This is the one module that checks a setting. Each setting declares its kind (`Integer`,
`Number`, `Boolean`, `OneOf`, ...), and that one kind converts and checks it wherever it comes
from: the environment and the config file here (`load_settings`), the command line through
`Settings.with_flags` (cli.py's option types only describe an option for --help and hand the
text to `convert`), and a `Settings(...)` built in Python (`__post_init__`). A range, a boolean
or a prompt directory is refused with the same one-line message and exit status 2 from all of
them; stages receive checked values and never check them again. Click is not imported here, so
importing a stage that reads a setting does not import the CLI toolkit.

Click's own `auto_envvar_prefix` and `default_map` were not used: they name variables per
command (LOCALDIGEST_DIGEST_RETRIES, not the documented LOCALDIGEST_RETRIES) and only reach
settings that have a flag, while intro or punctuation have none.

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
from localdigest.errors import ConfigError, TemplateError, UsageError

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
# An answer is the fact a reader takes away, so it is held to more: of 141 judged Japanese
# answers of 8 corpus papers (not those reported), 0.30 of those scored below -2.4 were
# supported by the paper (0.22 wrong), 0.60 of the rest (0.11); 19 of 20 answers shown wholly
# in English were supported (benchmarks/README.md, "Answers in English below -2.4").
DEFAULT_MIN_ANSWER_SCORE = -2.4
# Calibrated on 317 judged questions of 12 corpus papers (not those reported): 0.87 of those at
# or above it were answered (0.67 of all), 148 kept (benchmarks/README.md, issue 25)
DEFAULT_MIN_ANSWER = 0.9

# The digest formats `render` writes (templates/digest.<format with - as .>.j2, and json).
DIGEST_FORMATS = ("txt", "md", "html", "json", "bilingual-txt", "bilingual-md")
EXECUTORS = ("local", "ray")


class Refused(ValueError):
    """A value a setting's kind does not accept; the message says why, as click words it."""


# ---------------------------------------------------------------- kinds of setting
# Messages are worded as click's own types word them, so a refused flag reads as it always has.


@dataclass(frozen=True)
class Text:
    name = "text"

    def convert(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class Boolean:
    name = "boolean"
    states = {"1": True, "0": False, "yes": True, "no": False, "true": True, "false": False,
              "on": True, "off": False, "t": True, "f": False, "y": True, "n": False, "": False}  # fmt: skip

    def convert(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        state = self.states.get(str(value).strip().lower())
        if state is None:
            known = ", ".join(sorted(self.states))
            raise Refused(f"{value!r} is not a valid boolean. Recognized values: {known}")
        return state


@dataclass(frozen=True)
class Numeric:
    """An int (a float where not `whole`), within `min`..`max` where given."""

    min: float | None = None
    max: float | None = None
    whole: bool = True

    @property
    def name(self) -> str:
        kind = "integer" if self.whole else "float"
        return f"{kind} range" if self.bounded else kind

    @property
    def bounded(self) -> bool:
        return self.min is not None or self.max is not None

    def describe_range(self) -> str:
        if self.min is None:
            return f"x<={self.max}"
        if self.max is None:
            return f"x>={self.min}"
        return f"{self.min}<=x<={self.max}"

    def convert(self, value: Any) -> int | float:
        try:
            number = int(value) if self.whole else float(value)
        except ValueError:
            raise Refused(f"{value!r} is not a valid {self.name}.") from None
        too_low = self.min is not None and number < self.min
        if too_low or (self.max is not None and number > self.max):
            raise Refused(f"{number} is not in the range {self.describe_range()}.")
        return number


@dataclass(frozen=True)
class OneOf:
    choices: tuple[str, ...]
    name = "choice"

    def convert(self, value: Any) -> str:
        if str(value) not in self.choices:
            raise Refused(f"{value!r} is not one of {', '.join(map(repr, self.choices))}.")
        return str(value)


@dataclass(frozen=True)
class Formats:
    """A comma-separated list of built-in digest formats."""

    name = "formats"

    def convert(self, value: Any) -> str:
        given = [f.strip() for f in str(value).split(",") if f.strip()]
        if not given or any(f not in DIGEST_FORMATS for f in given):
            raise Refused(
                f"{str(value)!r}: use a comma-separated list of {', '.join(DIGEST_FORMATS)}"
            )
        return ",".join(given)


@dataclass(frozen=True)
class PromptDirectory:
    """A directory of prompt templates with every file and at least one question aspect."""

    name = "directory"

    def convert(self, value: Any) -> str:
        if not value:
            return ""
        from localdigest.prompts import PromptSet

        try:
            PromptSet(Path(value)).aspects  # noqa: B018 - reading them is the check
        except TemplateError as exc:
            raise Refused(str(exc)) from None
        return str(value)


@dataclass(frozen=True)
class Directory:
    """A directory that need not exist yet, but is not a file."""

    name = "directory"

    def convert(self, value: Any) -> str:
        if value and os.path.isfile(value):
            raise Refused(f"Directory {str(value)!r} is a file.")
        return str(value)


Kind = Text | Boolean | Numeric | OneOf | Formats | PromptDirectory | Directory


def _setting(default: Any, kind: Kind, help_: str) -> Any:
    """A setting's default, its kind (the one check for flag, environment, config file and
    Python alike) and its help."""
    return field(default=default, metadata={"help": help_, "kind": kind})


@dataclass(frozen=True)
class Settings:
    """Effective settings, each checked by its kind (a bad one raises ConfigError, however the
    settings were made). Zero/negative sentinels mean "decide automatically" where noted."""

    model: str = _setting(
        "auto", Text(), "auto (best installed model that fits memory), registry name or GGUF path"
    )
    models_dir: str = _setting("", Text(), "where GGUF files live (empty: auto)")
    ctx: int = _setting(0, Numeric(0), "context size in tokens (0: what the tasks need)")
    threads: int = _setting(0, Numeric(0), "CPU threads (0: physical cores)")
    gpu_layers: int = _setting(-1, Numeric(-1), "layers on GPU (-1: all if supported)")
    seed: int = _setting(42, Numeric(), "sampling seed")
    temperature: float = _setting(
        0.0, Numeric(0, 2, whole=False), "first try's temperature (0: greedy; retries rise)"
    )
    max_tokens: int = _setting(1024, Numeric(1), "cap on tokens per generation")
    questions: int = _setting(10, Numeric(1, 30), "Q&A pairs per paper (an upper bound)")
    glossary: bool = _setting(True, Boolean(), "inject standard Japanese ML terms")
    # Calibrated on corpus papers by reader verdicts (issue 22, benchmarks/README.md).
    min_score: float = _setting(
        DEFAULT_MIN_SCORE,
        Numeric(whole=False),
        "the model's score below which the English sentence is shown instead of its translation",
    )
    min_answer_score: float = _setting(
        DEFAULT_MIN_ANSWER_SCORE,
        Numeric(whole=False),
        "the model's score of an answer's translation below which the whole answer is shown in"
        " English",
    )
    min_answer: float = _setting(
        DEFAULT_MIN_ANSWER,
        Numeric(0, 1, whole=False),
        "how surely the model reads a sentence as answering its question, below which it is not"
        " asked",
    )
    max_pages: int = _setting(100, Numeric(1), "pages read per PDF (bounds work)")
    # 4, not 2: on 5 corpus papers, answers carrying a name or number of the paper went from 76%
    # to 86% (seed 42) and from 84% to 90% (seed 7), for 20% more wall time (a retry
    # evaluates one token of its parked prompt and only generates).
    retries: int = _setting(4, Numeric(0, 5), "retries of a generation that fails checks")
    parallel: int = _setting(0, Numeric(0), "answers decoded in parallel (0: auto)")
    # Generous: a paper takes 2-3 minutes on a 2-core CPU; only a stuck one reaches this.
    paper_timeout: int = _setting(
        1800, Numeric(0), "seconds a paper may take before it is stopped (0: no limit)"
    )
    formats: str = _setting("txt,md,html,json", Formats(), "digest output formats")
    prompts: str = _setting("", PromptDirectory(), "prompt template directory override")
    punctuation: str = _setting(
        "standard", OneOf(("standard", "reference")), "standard (。、) or reference (.)"
    )
    intro: str = _setting(DEFAULT_INTRO, Text(), "introduction paragraph")
    order: str = _setting(
        "date", OneOf(("date", "given")), "paper order: date (newest first) or given"
    )
    store: str = _setting("", Directory(), "record store directory (empty: OUTDIR/records)")
    executor: str = _setting("local", OneOf(EXECUTORS), "where papers run: here, or on Ray")
    # The default is below the range a user may give: it means "not given".
    workers: int = _setting(
        0, Numeric(1), "Ray workers, each holding a model (0: as many as the cluster allows)"
    )
    ray_address: str = _setting("", Text(), "Ray cluster address (empty: start a local one)")
    gpus_per_worker: float = _setting(0.0, Numeric(0, whole=False), "GPUs each Ray worker requests")

    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Check what was given in Python as flags and files are checked (defaults are known
        good): no stage ever sees an unchecked value."""
        for each in fields(self):
            value = getattr(self, each.name)
            if each.name != "sources" and value != each.default:
                object.__setattr__(self, each.name, check(each.name, value, "settings"))

    @property
    def digest_formats(self) -> list[str]:
        """`formats` as a list, in the order given."""
        return self.formats.split(",")

    def with_flags(self, **flags: Any) -> Settings:
        """Apply command-line flags; None means "not given" and keeps the lower layers.

        Raises:
            ConfigError: an unknown setting, or a value its kind refuses.
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

    def check_executor(self) -> None:
        """The Ray settings need the Ray executor (a combination no single value shows).

        Raises:
            UsageError: a Ray address or several workers for the local executor.
        """
        if self.executor == "local" and (self.ray_address or self.workers > 1):
            raise UsageError("--ray-address and --workers need --executor ray")


def setting_names() -> set[str]:
    return {f.name for f in fields(Settings) if f.name != "sources"}


def kind_of(name: str) -> Kind:
    """The kind of setting `name`: what converts and checks it (cli.py describes its flag by it)."""
    kind: Kind = Settings.__dataclass_fields__[name].metadata["kind"]
    return kind


_NATIVE = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}


def convert(name: str, text: Any) -> Any:
    """The value of setting `name` given as `text`, converted and checked by its kind.

    Raises:
        Refused: what is wrong, in one line (cli.py shows it as click shows a bad flag).
    """
    return kind_of(name).convert(text)


def check(name: str, raw: Any, origin: str) -> Any:
    """The value of setting `name` given as `raw` by `origin`, converted and checked.

    Text (environment, flags) is parsed by the setting's kind; a typed value (a config file's,
    Python's) must already be of the setting's type (`retries = 2.5` is not silently 2).

    Raises:
        ConfigError: one line naming the origin, the setting and what is wrong.
    """
    kind = type(Settings.__dataclass_fields__[name].default)
    if not isinstance(raw, str) and type(raw) not in _NATIVE[kind]:
        raise ConfigError(f"{origin}: {name} must be {kind.__name__}, got {raw!r}")
    try:
        return convert(name, raw)
    except Refused as exc:
        raise ConfigError(f"{origin}: {name}: {exc}") from None


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
