"""Render digest records into the weekly digest: txt, md and html through Jinja2 templates, or JSON.

Templates receive ready-to-print views (dates as 2024年05月23日, category names, honest
placeholders for missing metadata), so every format says the same thing and a user template
only lays it out. Paper titles and generated text are untrusted: HTML is autoescaped and
Markdown is escaped by the `md` filter.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localdigest import __version__, paths
from localdigest.config import Settings
from localdigest.errors import StoreError, TemplateError, UsageError
from localdigest.metadata import arxiv_url, category_name
from localdigest.record import STATUS_ERROR, DigestRecord, QAPair

if TYPE_CHECKING:
    import jinja2

# Version of the digest.json document (its "papers" hold records with their own schema_version).
DIGEST_SCHEMA_VERSION = 1

# Format name -> the file `digest -o` writes; a template format renders templates/<file>.j2.
FORMAT_FILES = {
    "txt": "digest.txt",
    "md": "digest.md",
    "html": "digest.html",
    "json": "digest.json",
    "bilingual-txt": "digest.bilingual.txt",
    "bilingual-md": "digest.bilingual.md",
}
BUILTIN_FORMATS = tuple(FORMAT_FILES)
ORDERS = ("date", "given")
PUNCTUATION_STYLES = ("standard", "reference")

UNKNOWN = "不明"
NO_URL = "なし（arXiv ID 不明）"
NO_SUMMARY = "（要約なし）"
NO_ABSTRACT = "（概要なし）"

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


# What a reader is told beside an item whose checks still fail (warning prefix -> label).
_FLAG_LABELS = (
    ("prompt echoed", "指示文の混入"),
    ("not Japanese", "英語のまま"),
    ("English copied", "英語の混入"),
    ("English words left", "英語の混入"),
    ("Chinese", "中国語の混入"),
    ("Cyrillic or Hangul", "外国文字の混入"),
    ("garbled term", "崩れた用語"),
    ("repeats itself", "繰り返し"),
    ("looks truncated", "途中で切れている"),
    ("much shorter", "訳抜けの疑い"),
    ("of the source missing", "数値・名称の欠落"),
    ("number scale changed", "桁の誤り"),
    ("not in the source", "原文にない数値・名称"),
    ("not in the abstract", "概要にない数値・名称"),
    ("glossary term", "用語が訳語表と不一致"),
    ("characters (want", "長さが不適切"),
    ("longer than one", "長さが不適切"),
    ("empty", "出力なし"),
)


def flag_text(warnings: Iterable[str]) -> str:
    """ "［要確認: 英語の混入・数値・名称の欠落］" for an item's unfixed defects, "" when none."""
    labels = [next((j for e, j in _FLAG_LABELS if e in w), "その他の不備") for w in warnings]
    return f"［要確認: {'・'.join(dict.fromkeys(labels))}］" if labels else ""


@dataclass
class SentenceView:
    text: str  # Japanese
    source: str  # the English it renders ("" for records older than schema 2)
    flag: str  # see flag_text


@dataclass
class EvidenceView:
    text: str
    page_text: str  # "p. 3"


@dataclass
class QAView:
    question: str
    answer: str
    pages: list[int]
    pages_text: str  # "p. 3, 5", empty when the answer cites no page
    flag: str
    evidence: list[EvidenceView]


@dataclass
class PaperView:
    """One paper as the templates print it; `record` is there for user templates that want more."""

    number: int
    anchor: str
    title: str
    authors: list[str]
    authors_text: str
    published: str
    updated: str
    url: str
    url_href: str | None  # only http(s) links become hyperlinks
    categories: list[str]
    categories_text: str
    summary: str
    summary_source: str  # the English sentence the summary translates ("" if unknown)
    summary_flag: str
    abstract: str
    abstract_sentences: list[SentenceView]  # 概要 sentence by sentence, with the English
    qa: list[QAView]
    warnings: list[str]
    record: DigestRecord


@dataclass
class FailedView:
    title: str
    source_path: str
    error: str


@dataclass
class DigestView:
    intro: str
    papers: list[PaperView]
    failed: list[FailedView] = field(default_factory=list)
    generated_by: str = f"localdigest {__version__}"


def format_date(iso: str | None) -> str:
    """`2024-05-23` -> `2024年05月23日`; unknown -> 不明; anything else is shown as it is."""
    if not iso:
        return UNKNOWN
    match = _ISO_DATE.match(iso)
    if not match:
        return iso
    year, month, day = match.groups()
    return f"{year}年{month}月{day}日"


def format_pages(pages: Iterable[int]) -> str:
    unique = sorted(set(pages))
    return f"p. {', '.join(str(p) for p in unique)}" if unique else ""


def apply_punctuation(text: str, style: str) -> str:
    """ "reference" writes 。 as "." like the page users publish today; "standard" keeps 。."""
    if style == "reference":
        return text.replace("。", ".")
    return text


def markdown_escape(text: str) -> str:
    """Backslash-escape what Markdown would read as markup or raw HTML (titles are untrusted)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def order_records(records: list[DigestRecord], order: str) -> list[DigestRecord]:
    """ "date": newest first by published date, unknown dates last (stable); "given": as given."""
    if order == "given":
        return list(records)
    if order != "date":
        raise UsageError(f"unknown order '{order}': use one of {', '.join(ORDERS)}")
    dated = [r for r in records if r.metadata.published]
    undated = [r for r in records if not r.metadata.published]
    dated.sort(key=lambda r: r.metadata.published or "", reverse=True)
    return dated + undated


def _display_title(record: DigestRecord) -> str:
    if record.metadata.title and record.metadata.title.strip():
        return record.metadata.title.strip()
    return f"（タイトル不明: {Path(record.source_path).name}）"


def _url(record: DigestRecord) -> tuple[str, str | None]:
    meta = record.metadata
    url = meta.url or (arxiv_url(meta.arxiv_id, meta.arxiv_version) if meta.arxiv_id else None)
    if not url:
        return NO_URL, None
    return url, url if url.startswith(("https://", "http://")) else None


def _paper_view(number: int, record: DigestRecord) -> PaperView:
    meta = record.metadata
    url, href = _url(record)
    categories = [category_name(code) for code in meta.categories]
    return PaperView(
        number=number,
        anchor=f"paper-{number}",
        title=_display_title(record),
        authors=list(meta.authors),
        authors_text=", ".join(meta.authors) if meta.authors else UNKNOWN,
        published=format_date(meta.published),
        updated=format_date(meta.updated),
        url=url,
        url_href=href,
        categories=categories,
        categories_text=", ".join(categories) if categories else UNKNOWN,
        summary=record.summary_ja or NO_SUMMARY,
        summary_source=record.summary_source or "",
        summary_flag=flag_text(record.summary_warnings),
        abstract=record.abstract_ja or NO_ABSTRACT,
        abstract_sentences=_abstract_sentences(record),
        qa=[_qa_view(q) for q in record.qa],
        warnings=list(record.warnings),
        record=record,
    )


def _abstract_sentences(record: DigestRecord) -> list[SentenceView]:
    if record.abstract_sentences:
        return [
            SentenceView(p.shown, p.source, flag_text(p.warnings))
            for p in record.abstract_sentences
        ]
    return [SentenceView(record.abstract_ja or NO_ABSTRACT, "", "")]


def _qa_view(pair: QAPair) -> QAView:
    return QAView(
        question=pair.question,
        answer=pair.answer,
        pages=sorted(set(pair.pages)),
        pages_text=format_pages(pair.pages),
        flag=flag_text(pair.warnings),
        evidence=[
            EvidenceView(e.text, format_pages([e.page] if e.page else [])) for e in pair.evidence
        ],
    )


def digest_view(records: list[DigestRecord], settings: Settings, order: str = "date") -> DigestView:
    """What the templates see: papers in order, failed papers apart."""
    ordered = order_records(records, order)
    ok = [r for r in ordered if r.status != STATUS_ERROR]
    failed = [
        FailedView(_display_title(r), r.source_path, r.error or "unknown error")
        for r in ordered
        if r.status == STATUS_ERROR
    ]
    papers = [_paper_view(i, r) for i, r in enumerate(ok, start=1)]
    return DigestView(intro=settings.intro, papers=papers, failed=failed)


def digest_json(records: list[DigestRecord], order: str = "date") -> str:
    """All records, failed ones included, as one document for jq and other tools."""
    document = {
        "schema_version": DIGEST_SCHEMA_VERSION,
        "generated_by": f"localdigest {__version__}",
        "papers": [r.to_dict() for r in order_records(records, order)],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _is_html(name: str | None) -> bool:
    return bool(name) and str(name).endswith((".html.j2", ".htm.j2", ".html", ".htm"))


def _environment(search_path: list[Path], settings: Settings) -> jinja2.Environment:
    import jinja2

    if settings.punctuation not in PUNCTUATION_STYLES:
        raise UsageError(
            f"unknown punctuation style '{settings.punctuation}': "
            f"use one of {', '.join(PUNCTUATION_STYLES)}"
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
        undefined=jinja2.StrictUndefined,
        autoescape=_is_html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    style = settings.punctuation
    filters: dict[str, Callable[..., str]] = {
        "punct": lambda text: apply_punctuation(str(text), style),
        "md": lambda text: markdown_escape(str(text)),
        "pages": format_pages,
    }
    env.filters.update(filters)
    return env


def _template_line(exc: BaseException, filename: str) -> int | None:
    """The template line a runtime error came from (Jinja maps template frames to the .j2 file)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_template(template_path: Path, view: DigestView, settings: Settings) -> str:
    import jinja2

    search_path = [template_path.parent, paths.templates_dir()]
    env = _environment(search_path, settings)
    try:
        template = env.get_template(template_path.name)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{template_path} line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound:
        raise TemplateError(f"{template_path}: template not found") from None
    try:
        return str(template.render(**view.__dict__))
    except jinja2.UndefinedError as exc:
        line = _template_line(exc, str(template.filename))
        where = f"{template_path} line {line}" if line else str(template_path)
        raise TemplateError(f"{where}: undefined variable: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{template_path}: {exc}") from None


def builtin_template(fmt: str) -> Path:
    return paths.templates_dir() / f"{FORMAT_FILES[fmt]}.j2"


def render(
    records: list[DigestRecord], fmt: str, *, settings: Settings, order: str = "date"
) -> str:
    """Render records as one digest.

    Args:
        records: digest records; "error" records are listed as failed, not rendered as papers.
        fmt: txt, md, html or json, or the path of a user `.j2` template.
        settings: intro and punctuation come from here.
        order: "date" (newest first, unknown dates last) or "given".

    Returns:
        The digest text.

    Raises:
        TemplateError: the template is missing, malformed or uses an undefined variable.
        UsageError: unknown format, order or punctuation style.
    """
    if fmt == "json":
        return digest_json(records, order)
    if fmt in BUILTIN_FORMATS:
        template_path = builtin_template(fmt)
    elif fmt.endswith(".j2") or Path(fmt).is_file():
        template_path = Path(fmt)
        if not template_path.is_file():
            raise TemplateError(f"{template_path}: template not found")
    else:
        raise UsageError(
            f"unknown format '{fmt}': use one of {', '.join(BUILTIN_FORMATS)}"
            " or the path of a .j2 template"
        )
    return _render_template(
        template_path.resolve(), digest_view(records, settings, order), settings
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path}: corrupt record file: {exc}") from None


def _record_from(data: Any, path: Path) -> DigestRecord:
    try:
        return DigestRecord.from_dict(data)
    except (TypeError, KeyError, AttributeError) as exc:
        raise StoreError(
            f"{path}: not a digest record ({exc}): delete it or re-run 'localdigest digest'"
        ) from None


def _is_digest_document(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("papers"), list)
        and "source_path" not in data
    )


def load_records(paths_: list[Path]) -> list[DigestRecord]:
    """Read record JSON files and directories of them (recursively), in the order given.

    A digest.json document named on the command line contributes its papers; one met while
    walking a directory is skipped, since it is output rendered from the records beside it.
    Hidden files (temporary files of an atomic write in progress) are skipped.

    Raises:
        StoreError: a path does not exist, a file is not a valid record, or nothing was found.
    """
    records: list[DigestRecord] = []
    for path in paths_:
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*.json") if p.is_file() and not p.name.startswith(".")
            )
            for file in files:
                data = _read_json(file)
                if not _is_digest_document(data):
                    records.append(_record_from(data, file))
        elif path.is_file():
            data = _read_json(path)
            if _is_digest_document(data):
                records.extend(_record_from(paper, path) for paper in data["papers"])
            else:
                records.append(_record_from(data, path))
        else:
            raise StoreError(f"{path}: no such file or directory")
    if not records:
        names = ", ".join(str(p) for p in paths_)
        raise StoreError(f"no digest records found in {names}: run 'localdigest digest' first")
    return records


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file, fsync and rename, so readers never see half a digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a digest is meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_digest(
    records: list[DigestRecord], out_dir: Path, formats: list[str], settings: Settings
) -> list[Path]:
    """Write digest.<fmt> for each built-in format into out_dir; returns the paths written.

    Everything is rendered before anything is written, so a template error leaves old files intact.
    """
    unknown = [f for f in formats if f not in BUILTIN_FORMATS]
    if unknown:
        raise UsageError(
            f"unknown digest format(s) {', '.join(unknown)}: use {', '.join(BUILTIN_FORMATS)}"
        )
    rendered = {
        fmt: render(records, fmt, settings=settings, order=settings.order) for fmt in formats
    }
    written = []
    for fmt, text in rendered.items():
        target = out_dir / FORMAT_FILES[fmt]
        write_text_atomic(target, text)
        written.append(target)
    return written
