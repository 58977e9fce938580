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
    "translate_system.j2",
    "translate.j2",
    "translate_examples.tsv",
    "reader_system.j2",
    "verify.j2",
    "question.j2",
    "question_whole.j2",
    "answers.j2",
    "answer_span.j2",
    "summary.j2",
    "aspects.tsv",
    "read_back_system.j2",
)


@dataclass(frozen=True)
class Aspect:
    """What a question is about: the question the reader sees, what its answer sentence must
    state (for the model, in English), cue words that find candidate sentences, the question
    for a second answer sentence ("" where the aspect is asked once only), what kind of fact
    its sentence must hold, and the two questions in English (the model reads whether a
    sentence answers them)."""

    key: str
    question: str
    description: str
    cues: tuple[str, ...] = ()
    second_question: str = ""
    needs: str = "-"  # what its sentence must hold, checked without the model (select.NEEDS)
    english: str = ""
    second_english: str = ""


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
        """The question aspects a researcher asks about, in order."""
        aspects = []
        for fields in self._rows("aspects.tsv", 8):
            key, question, description, cues, second, needs, english, second_english = fields
            cue_words = tuple(c.strip() for c in cues.split(",") if c.strip())
            second, second_english = ("", "") if second == "-" else (second, second_english)
            aspects.append(
                Aspect(
                    key, question, description, cue_words, second, needs, english, second_english
                )
            )
        if not aspects:
            raise TemplateError(f"{self.directory / 'aspects.tsv'}: no aspects")
        return aspects

    @cached_property
    def translation_examples(self) -> list[tuple[str, str]]:
        """Worked (English, Japanese) examples shown before every sentence to translate."""
        return [(en, ja) for en, ja in self._rows("translate_examples.tsv", 2)]

    def _rows(self, name: str, width: int) -> list[list[str]]:
        """The tab-separated rows of a data file, comments and blank lines skipped."""
        rows = []
        text = (self.directory / name).read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) != width:
                raise TemplateError(
                    f"{self.directory / name}:{number}: want {width} tab-separated fields"
                )
            rows.append(fields)
        return rows

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
