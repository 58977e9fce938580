"""What generation produces for one paper, and what the store keeps and render reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from localdigest.paper import PaperMetadata

SCHEMA_VERSION = 2  # 2: abstract_sentences, summary_source, summary_warnings, QAPair.evidence

STATUS_OK = "ok"
STATUS_ERROR = "error"


UNTRANSLATED = "［未翻訳の原文］"  # shown before English the model would not translate


@dataclass
class SentencePair:
    """A Japanese sentence beside the English it renders; `warnings` are its unfixed defects."""

    source: str
    text: str
    warnings: list[str] = field(default_factory=list)
    untranslated: bool = False  # no usable Japanese came out: `text` is the English source

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
    warnings: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    aspect: str = ""  # the question aspect (problem, result, ...) it was asked for

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QAPair:
        evidence = [Evidence(**e) for e in data.get("evidence", [])]
        return cls(**{**data, "evidence": evidence})


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
    summary_warnings: list[str] = field(default_factory=list)
    qa: list[QAPair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
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
        """A record of this schema or an older one. Schema 1 -> 2: the new fields stay empty
        (no English sources or evidence were kept), and the record reads as schema 2."""
        return cls(
            **{
                **data,
                "schema_version": max(SCHEMA_VERSION, int(data.get("schema_version", 1))),
                "metadata": PaperMetadata(**data["metadata"]),
                "qa": [QAPair.from_dict(q) for q in data.get("qa", [])],
                "abstract_sentences": [
                    SentencePair(**p) for p in data.get("abstract_sentences", [])
                ],
            }
        )
