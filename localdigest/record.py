"""What generation produces for one paper, and what the store keeps and render reads."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from localdigest.errors import StoreError
from localdigest.paper import PaperMetadata

SCHEMA_VERSION = 5  # 2: abstract_sentences, summary_source, summary_warnings, QAPair.evidence
# 3: SentencePair.attempt and .score, QAPair.score; 4: warnings of items as Problem (kind, detail)
# 5: QAPair.attempt

STATUS_OK = "ok"
STATUS_ERROR = "error"


UNTRANSLATED = "［未翻訳の原文］"  # shown before English the model would not translate


@dataclass(frozen=True)
class Problem:
    """What a check found wrong with an output: its `kind` (a row of `generate.checks.CHECKS`,
    which says what the pipeline does about it) and what exactly it found."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


@dataclass
class SentencePair:
    """A Japanese sentence beside the English it renders; `warnings` are its unfixed defects."""

    source: str
    text: str
    warnings: list[Problem] = field(default_factory=list)
    untranslated: bool = False  # no Japanese we can stand behind: `text` is the English source
    attempt: str = ""  # the Japanese attempt where the English is shown instead
    score: float | None = None  # the model's score of the pair (translate.Translator._score)

    @property
    def shown(self) -> str:
        """What a reader sees: the Japanese, or the English marked as left untranslated."""
        return f"{UNTRANSLATED}{self.text}" if self.untranslated else self.text


@dataclass
class Evidence:
    """A sentence of the paper an answer rests on, and its page."""

    text: str
    page: int | None = None


@dataclass
class QAPair:
    question: str
    answer: str
    pages: list[int] = field(default_factory=list)  # pages the answer draws on
    warnings: list[Problem] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    aspect: str = ""  # the question aspect (problem, result, ...) it was asked for
    score: float | None = None  # the lowest score of its sentences' translations
    english_shown: bool = False  # the answer is the marked English of its sentences
    attempt: str = ""  # the Japanese attempt where the English is shown instead

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QAPair:
        evidence = [Evidence(**e) for e in data.get("evidence", [])]
        return cls(**{**data, "evidence": evidence, "warnings": _problems(data)})


@dataclass
class DigestRecord:
    """One paper's digest with its provenance. `status` "error" records carry `error` instead."""

    source_path: str
    source_sha256: str
    metadata: PaperMetadata
    abstract_ja: str | None = None  # 概要
    summary_ja: str | None = None  # one sentence for the index
    abstract_sentences: list[SentencePair] = field(default_factory=list)  # 概要 by sentence
    summary_source: str | None = None  # the English sentence the summary translates
    summary_warnings: list[Problem] = field(default_factory=list)
    qa: list[QAPair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the paper's, not an item's
    left_out: list[str] = field(default_factory=list)  # sections not given to the model, and why
    status: str = STATUS_OK
    error: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)  # model, sha256, params, versions
    stats: dict[str, Any] = field(default_factory=dict)  # tokens and seconds per stage
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DigestRecord:
        """A record of this schema, or of an older one migrated to it (see MIGRATIONS).

        Raises:
            StoreError: the record was written by a newer localdigest.
        """
        data = migrated(data)
        return cls(
            **{
                **data,
                "metadata": PaperMetadata(**data["metadata"]),
                "qa": [QAPair.from_dict(q) for q in data.get("qa", [])],
                "abstract_sentences": [
                    SentencePair(**{**p, "warnings": _problems(p)})
                    for p in data.get("abstract_sentences", [])
                ],
                "summary_warnings": _problems(data, "summary_warnings"),
            }
        )


def _problems(data: dict[str, Any], key: str = "warnings") -> list[Problem]:
    return [Problem(**p) for p in data.get(key, [])]


def japanese_coverage(records: list[DigestRecord]) -> tuple[int, int]:
    """(shown in Japanese, all) over the 概要 sentences, summaries and answers of `records`."""
    shown = total = 0
    for r in records:
        flags = [not p.untranslated for p in r.abstract_sentences]
        flags += [not q.english_shown for q in r.qa]
        if r.summary_ja:
            flags.append(not r.summary_ja.startswith(UNTRANSLATED))
        shown, total = shown + sum(flags), total + len(flags)
    return shown, total


def _from_schema_1(data: dict[str, Any]) -> dict[str, Any]:
    """1 -> 2: schema 2 added the English beside each 概要 sentence, the summary's source and
    warnings, and each answer's evidence and aspect; a schema 1 record kept none of them, so
    they stay empty (their defaults)."""
    return {**data, "schema_version": 2}


def _from_schema_2(data: dict[str, Any]) -> dict[str, Any]:
    """2 -> 3: schema 3 added the model's score of each translation and the Japanese attempt
    behind an English sentence shown instead; a schema 2 record scored nothing (their
    defaults); an answer it showed as the marked English is marked as such."""
    qa = [
        {**q, "english_shown": str(q.get("answer", "")).startswith(UNTRANSLATED)}
        for q in data.get("qa", [])
    ]
    return {**data, "qa": qa, "schema_version": 3}


# Schema 3 kept a problem as text; its kind was the first of these fragments in its text before
# the first ':' or '(', else anywhere in it (problems.kind_of then): the kind each now names.
_SCHEMA_3_KINDS = {
    "empty": "empty",
    "prompt echoed": "prompt echoed",
    "not Japanese": "not Japanese",
    "Chinese": "Chinese",
    "Cyrillic or Hangul": "Cyrillic or Hangul",
    "repeats itself": "repeats itself",
    "looks truncated": "looks truncated",
    "invented word": "invented word",
    "loanword of another word": "loanword of another word",
    "English copied": "English copied",
    "English words left": "English words left",
    "garbled term": "garbled term",
    "much shorter": "much shorter than its source",
    "of the source missing": "numbers or names of the source missing",
    "number scale changed": "number scale changed",
    "not in the source": "numbers or names not in the source",
    "not in the abstract": "numbers or names not in the abstract",
    "glossary term": "glossary term not used",
    "meaning may differ": "meaning may differ",
    "characters (want": "summary length",
    "longer than one": "longer than one short sentence",
    "not one question": "not one question",
    "question too long": "question too long",
    "summary source is not English": "not English",
    "no yes or no": "no yes or no",
    "no sentence number": "no sentence number",
    "out of range": "sentence number out of range",
}


def _schema_3_problem(text: str) -> dict[str, str]:
    head = re.split(r"[:(]", text)[0]
    found = next((k for k in _SCHEMA_3_KINDS if k in head), None)
    found = found or next((k for k in _SCHEMA_3_KINDS if k in text), None)
    kind = _SCHEMA_3_KINDS[found] if found else "other"
    detail = text.removeprefix(f"{kind}: ") if text != kind else ""
    return {"kind": kind, "detail": detail}


def _from_schema_3(data: dict[str, Any]) -> dict[str, Any]:
    """3 -> 4: schema 4 keeps each problem of an item as its kind and detail, where schema 3
    kept its text; each text's kind is the one schema 3 read from it, so an old record is
    flagged as before."""

    def typed(item: dict[str, Any], key: str = "warnings") -> dict[str, Any]:
        return {**item, key: [_schema_3_problem(str(w)) for w in item.get(key, [])]}

    return {
        **typed(data, "summary_warnings"),
        "abstract_sentences": [typed(p) for p in data.get("abstract_sentences", [])],
        "qa": [typed(q) for q in data.get("qa", [])],
        "schema_version": 4,
    }


def _from_schema_4(data: dict[str, Any]) -> dict[str, Any]:
    """4 -> 5: schema 5 keeps the Japanese attempt behind an answer shown in English; a schema 4
    record did not (its default, empty), and showed such an answer as before."""
    return {**data, "schema_version": 5}


# Each step takes a record of schema N (the key) to schema N + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _from_schema_1,
    2: _from_schema_2,
    3: _from_schema_3,
    4: _from_schema_4,
}


def migrated(data: dict[str, Any]) -> dict[str, Any]:
    """A stored record's fields in this schema, through each migration from its own."""
    version = int(data.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"record of schema {version}, newer than this localdigest reads "
            f"({SCHEMA_VERSION}): upgrade localdigest to read this archive"
        )
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    return data
