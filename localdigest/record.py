"""What generation produces for one paper, and what the store keeps and render reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from localdigest.paper import PaperMetadata

SCHEMA_VERSION = 1

STATUS_OK = "ok"
STATUS_ERROR = "error"


@dataclass
class QAPair:
    question: str
    answer: str
    pages: list[int] = field(default_factory=list)  # pages the answer draws on
    warnings: list[str] = field(default_factory=list)


@dataclass
class DigestRecord:
    """One paper's digest with its provenance. `status` "error" records carry `error` instead."""

    source_path: str
    source_sha256: str
    metadata: PaperMetadata
    abstract_ja: str | None = None  # 概要
    summary_ja: str | None = None  # one sentence for the index
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
        return cls(
            **{
                **data,
                "metadata": PaperMetadata(**data["metadata"]),
                "qa": [QAPair(**q) for q in data.get("qa", [])],
            }
        )
