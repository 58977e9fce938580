"""Prompt templates (Jinja2 files under templates/prompts/, overridable with --prompts DIR).

The hash of the whole set is the prompt version recorded on every record, so changing a
prompt redoes exactly the papers it affects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from localdigest import paths
from localdigest.errors import TemplateError

PROMPT_FILES = (
    "system.j2",
    "paper.j2",
    "abstract.j2",
    "summary.j2",
    "qa.j2",
    "notes.j2",
    "aspects.txt",
)


@dataclass(frozen=True)
class Aspect:
    """What a question is about, and cue words that find the passage answering it."""

    label: str
    cues: tuple[str, ...] = ()


class PromptSet:
    """A directory of prompt templates, rendered with StrictUndefined."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory else paths.templates_dir() / "prompts"
        missing = [name for name in PROMPT_FILES if not (self.directory / name).is_file()]
        if missing:
            raise TemplateError(f"{self.directory}: missing prompt file(s): {', '.join(missing)}")

    @cached_property
    def version(self) -> str:
        """sha256 over the names and contents of the prompt files (first 16 hex digits)."""
        digest = hashlib.sha256()
        for name in PROMPT_FILES:
            digest.update(name.encode() + b"\0" + (self.directory / name).read_bytes() + b"\0")
        return digest.hexdigest()[:16]

    @cached_property
    def aspects(self) -> list[Aspect]:
        """The question aspects a researcher asks about, in order, with their passage cues.

        Raises:
            TemplateError: the file lists none (questions are spread over the aspects).
        """
        aspects = []
        text = (self.directory / "aspects.txt").read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.strip() and not line.startswith("#"):
                label, _, cues = line.partition("\t")
                aspects.append(Aspect(label.strip(), tuple(filter(None, cues.split(",")))))
        if not aspects:
            raise TemplateError(f"{self.directory / 'aspects.txt'}: no question aspects in it")
        return aspects

    @cached_property
    def _env(self) -> Any:
        import jinja2

        return jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(self.directory)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )

    def render(self, name: str, **variables: Any) -> str:
        import jinja2

        try:
            return self._env.get_template(name).render(**variables).strip()
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{self.directory / name}: {exc.message}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{self.directory / name}:{exc.lineno}: {exc.message}") from None
