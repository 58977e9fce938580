"""What extraction produces: a paper's text by page and section, plus its metadata."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Section kinds. Later stages leave out everything that is not body/abstract by default.
ABSTRACT = "abstract"
BODY = "body"
REFERENCES = "references"
APPENDIX = "appendix"
ACKNOWLEDGMENTS = "acknowledgments"
FRONT = "front"  # title block, authors, affiliations before the abstract


@dataclass(frozen=True)
class Block:
    """A paragraph of body text and the 1-based page it sits on (for page citations)."""

    text: str
    page: int


@dataclass
class Section:
    """A headed part of the paper. `number` is "3.2" for "3.2 Training", None when unnumbered."""

    title: str
    kind: str = BODY
    number: str | None = None
    level: int = 1
    blocks: list[Block] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)

    @property
    def pages(self) -> list[int]:
        return sorted({b.page for b in self.blocks})


@dataclass
class PaperMetadata:
    """Bibliographic fields. Dates are ISO `YYYY-MM-DD`; None means unknown (rendered honestly)."""

    title: str | None = None
    authors: list[str] = field(default_factory=list)
    abstract: str | None = None
    arxiv_id: str | None = None  # "1706.03762" (no version)
    arxiv_version: int | None = None
    primary_category: str | None = None  # "cs.CL"
    categories: list[str] = field(default_factory=list)  # codes, primary first
    published: str | None = None  # 発行日: v1 date; "YYYY-MM" when only the month is known
    published_from_id: bool = False  # `published` is the month the arXiv id encodes
    updated: str | None = None  # 最終更新日: latest version date
    url: str | None = None  # http://arxiv.org/pdf/<id>v<N>
    source: str = "pdf"  # "pdf" or the metadata file it came from


@dataclass
class Paper:
    """A paper as the pipeline sees it."""

    path: str
    sha256: str
    page_count: int
    metadata: PaperMetadata
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pages_read: int | None = None  # < page_count when --max-pages cut the document

    def sections_of(self, *kinds: str) -> list[Section]:
        return [s for s in self.sections if s.kind in kinds]

    @property
    def body_text(self) -> str:
        """Abstract and body sections only: no references, appendices or acknowledgments."""
        return "\n\n".join(s.text for s in self.sections_of(ABSTRACT, BODY) if s.blocks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Paper:
        sections = [
            Section(**{**s, "blocks": [Block(**b) for b in s.get("blocks", [])]})
            for s in data.get("sections", [])
        ]
        return cls(
            **{
                **data,
                "metadata": PaperMetadata(**data["metadata"]),
                "sections": sections,
            }
        )
