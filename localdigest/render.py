"""Render digest records into the weekly digest: txt, md and html through Jinja2 templates, or JSON.

Templates receive ready-to-print views (dates as 2024年05月23日, category names, honest
placeholders for missing metadata), so every format says the same thing and a user template
only lays it out. Paper titles, metadata and generated text are untrusted: the views hold them
on one line without control characters (so no format's line structure can be forged, the text
format's included), links are percent-encoded, HTML is autoescaped and Markdown is escaped by
the `md` filter. Published digests name a failed paper's file, never its local path.

A directory of records may hold several per paper (other models, prompts or options, and
failed runs): `load_records` keeps one per source PDF, its newest successful record or, when
none succeeded, its newest failure; `every=True` (`--all`) keeps them all.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from localdigest import __version__, paths
from localdigest.arxiv import arxiv_url, category_name
from localdigest.config import DIGEST_FORMATS, Settings
from localdigest.errors import StoreError, TemplateError, UsageError
from localdigest.files import write_atomic
from localdigest.generate import checks
from localdigest.paper import PaperMetadata
from localdigest.record import (
    STATUS_ERROR,
    STATUS_OK,
    UNTRANSLATED,
    DigestRecord,
    Problem,
    QAPair,
)

if TYPE_CHECKING:
    import jinja2

log = logging.getLogger("localdigest")

# Version of the digest.json document (its "papers" hold records with their own schema_version).
DIGEST_SCHEMA_VERSION = 1

# Format name -> the file `digest -o` writes; a template format renders templates/<file>.j2.
FORMAT_FILES = {fmt: "digest." + fmt.replace("-", ".") for fmt in DIGEST_FORMATS}
BUILTIN_FORMATS = tuple(FORMAT_FILES)

UNKNOWN = "不明"
FROM_ID = "（arXiv IDより）"  # 発行日 read from the id's month, not from a v1 date
NO_URL = "なし（arXiv ID 不明）"
NO_SUMMARY = "（要約なし）"
NO_ABSTRACT = "（概要なし）"

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2})|$)")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")
# Line breaks (every one str.splitlines knows) and other control characters, which would let a
# value start a line of its own or steer a terminal; tabs become spaces too.
_BREAKS_AND_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# An absolute local path (POSIX or Windows) in a message; its last part is kept.
_LOCAL_PATH = re.compile(r"(?<![\w.~:/\\-])(?:/|[A-Za-z]:\\)(?:[^\s/\\:'\"()]+[/\\])+")
# What may stay literal in a link; everything else (<, >, spaces, quotes) is percent-encoded.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def flag_text(warnings: Iterable[Problem]) -> str:
    """ "［要確認: 中国語の混入］" for an item's problems of a kind shown to readers (those whose
    flag measurably marks wrong renderings: a label in checks.CHECKS), "" when none."""
    labels = checks.shown_labels(warnings)
    return f"［要確認: {'・'.join(labels)}］" if labels else ""


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
    source_path: str  # the file's name only: a published digest does not show local paths
    error: str


@dataclass
class DigestView:
    intro: str
    papers: list[PaperView]
    failed: list[FailedView] = field(default_factory=list)
    generated_by: str = f"localdigest {__version__}"


def format_date(iso: str | None) -> str:
    """`2024-05-23` -> `2024年05月23日`, `2017-06` -> `2017年06月`; unknown -> 不明; anything
    else is shown as it is."""
    if not iso:
        return UNKNOWN
    match = _ISO_DATE.match(iso)
    if not match:
        return iso
    year, month, day = match.groups()
    return f"{year}年{month}月{day}日" if day else f"{year}年{month}月"


def format_published(meta: PaperMetadata) -> str:
    """発行日, saying where only the arXiv id gave it (a later version's stamp dates itself)."""
    shown = format_date(meta.published)
    return f"{shown}{FROM_ID}" if meta.published and meta.published_from_id else shown


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


def one_line(text: str) -> str:
    """Untrusted text on one line: line breaks and control characters become a space."""
    return _BREAKS_AND_CONTROLS.sub(" ", text).strip()


def without_local_paths(text: str) -> str:
    """A message with every absolute local path shortened to its last part (the file name)."""
    return _LOCAL_PATH.sub("", text)


def order_records(records: list[DigestRecord], order: str) -> list[DigestRecord]:
    """ "date": newest first by published date, unknown dates last (stable); "given": as given."""
    if order == "given":
        return list(records)
    dated = [r for r in records if r.metadata.published]
    undated = [r for r in records if not r.metadata.published]
    dated.sort(key=lambda r: r.metadata.published or "", reverse=True)
    return dated + undated


def _file_name(path: str) -> str:
    return one_line(Path(path.replace("\\", "/")).name)


def _display_title(record: DigestRecord) -> str:
    title = one_line(record.metadata.title or "")
    return title or f"（タイトル不明: {_file_name(record.source_path)}）"


def _url(record: DigestRecord) -> tuple[str, str | None]:
    meta = record.metadata
    url = meta.url or (arxiv_url(meta.arxiv_id, meta.arxiv_version) if meta.arxiv_id else None)
    url = one_line(url or "")
    if not url:
        return NO_URL, None
    return url, quote(url, safe=_URL_SAFE) if url.startswith(("https://", "http://")) else None


def _paper_view(number: int, record: DigestRecord) -> PaperView:
    meta = record.metadata
    url, href = _url(record)
    authors = [one_line(a) for a in meta.authors]
    categories = [one_line(category_name(code)) for code in meta.categories]
    return PaperView(
        number=number,
        anchor=f"paper-{number}",
        title=_display_title(record),
        authors=authors,
        authors_text=", ".join(authors) if authors else UNKNOWN,
        published=one_line(format_published(meta)),
        updated=one_line(format_date(meta.updated)),
        url=url,
        url_href=href,
        categories=categories,
        categories_text=", ".join(categories) if categories else UNKNOWN,
        summary=one_line(record.summary_ja or "") or NO_SUMMARY,
        summary_source=one_line(record.summary_source or ""),
        summary_flag=""
        if (record.summary_ja or "").startswith(UNTRANSLATED)
        else flag_text(record.summary_warnings),
        abstract=one_line(record.abstract_ja or "") or NO_ABSTRACT,
        abstract_sentences=_abstract_sentences(record),
        qa=[_qa_view(q) for q in record.qa],
        warnings=[without_local_paths(one_line(w)) for w in record.warnings],
        record=record,
    )


def _abstract_sentences(record: DigestRecord) -> list[SentenceView]:
    if record.abstract_sentences:
        return [
            SentenceView(
                one_line(p.shown),
                one_line(p.source),
                "" if p.untranslated else flag_text(p.warnings),
            )
            for p in record.abstract_sentences
        ]
    return [SentenceView(one_line(record.abstract_ja or "") or NO_ABSTRACT, "", "")]


def _qa_view(pair: QAPair) -> QAView:
    pages = _page_numbers(pair.pages)
    return QAView(
        question=one_line(pair.question),
        answer=one_line(pair.answer),
        pages=pages,
        pages_text=format_pages(pages),
        flag="" if pair.english_shown else flag_text(pair.warnings),
        evidence=[
            EvidenceView(one_line(e.text), format_pages(_page_numbers([e.page])))
            for e in pair.evidence
        ],
    )


def _page_numbers(pages: Iterable[Any]) -> list[int]:
    """Page numbers of a record as sorted ints: anything else in a hand-edited record is dropped."""
    return sorted({p for p in pages if isinstance(p, int) and not isinstance(p, bool)})


def digest_view(records: list[DigestRecord], settings: Settings, order: str = "date") -> DigestView:
    """What the templates see: papers in order, failed papers apart."""
    ordered = order_records(records, order)
    ok = [r for r in ordered if r.status != STATUS_ERROR]
    failed = [
        FailedView(
            _display_title(r),
            _file_name(r.source_path),
            without_local_paths(one_line(r.error or "")) or "unknown error",
        )
        for r in ordered
        if r.status == STATUS_ERROR
    ]
    papers = [_paper_view(i, r) for i, r in enumerate(ok, start=1)]
    return DigestView(intro=settings.intro, papers=papers, failed=failed)


def digest_json(records: list[DigestRecord], order: str = "date") -> str:
    """All records, failed ones included, as one document for jq and other tools; the local
    paths records keep (PDF, model, metadata file) are shortened to file names."""
    document = {
        "schema_version": DIGEST_SCHEMA_VERSION,
        "generated_by": f"localdigest {__version__}",
        "papers": [_published(r) for r in order_records(records, order)],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _published(record: DigestRecord) -> dict[str, Any]:
    data = record.to_dict()
    data["source_path"] = _file_name(record.source_path)
    if record.metadata.source not in (None, "pdf"):
        data["metadata"]["source"] = _file_name(str(record.metadata.source))
    if record.provenance.get("model_path"):
        data["provenance"]["model_path"] = _file_name(str(record.provenance["model_path"]))
    if record.error:
        data["error"] = without_local_paths(record.error)
    return data


def _is_html(name: str | None) -> bool:
    return bool(name) and str(name).endswith((".html.j2", ".htm.j2", ".html", ".htm"))


def _environment(search_path: list[Path], settings: Settings) -> jinja2.Environment:
    import jinja2

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
        settings: intro and punctuation come from here (checked by config.py).
        order: "date" (newest first, unknown dates last) or "given" (the `order` setting).

    Returns:
        The digest text.

    Raises:
        TemplateError: the template is missing, malformed or uses an undefined variable.
        UsageError: `fmt` is neither a built-in format nor a template's path.
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
    except StoreError as exc:
        raise StoreError(f"{path}: {exc}") from None
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


def load_records(paths_: list[Path], *, every: bool = False) -> list[DigestRecord]:
    """Read record JSON files and directories of them (recursively), in the order given.

    A digest.json document named on the command line contributes its papers; one met while
    walking a directory is skipped, since it is output rendered from the records beside it.
    Hidden files (temporary files of an atomic write in progress) are skipped.

    Unless `every`, one record per paper (source PDF sha256) is kept: its newest successful
    record, or its newest failure when none succeeded; how many were left out is logged.

    Raises:
        StoreError: a path does not exist, a file is not a valid record, or nothing was found.
    """
    found: list[tuple[DigestRecord, datetime]] = []
    for path in paths_:
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*.json") if p.is_file() and not p.name.startswith(".")
            )
            for file in files:
                data = _read_json(file)
                if not _is_digest_document(data):
                    found.append((_record_from(data, file), _modified(file)))
        elif path.is_file():
            data = _read_json(path)
            if _is_digest_document(data):
                found.extend((_record_from(p, path), _modified(path)) for p in data["papers"])
            else:
                found.append((_record_from(data, path), _modified(path)))
        else:
            raise StoreError(f"{path}: no such file or directory")
    if not found:
        names = ", ".join(str(p) for p in paths_)
        raise StoreError(f"no digest records found in {names}: run 'localdigest digest' first")
    if every:
        return [record for record, _ in found]
    kept = latest_per_paper(found)
    if len(kept) < len(found):
        log.info(
            "%d superseded record(s) left out (other settings or failed runs of the same "
            "papers; --all lists them)",
            len(found) - len(kept),
        )
    return kept


def latest_per_paper(found: list[tuple[DigestRecord, datetime]]) -> list[DigestRecord]:
    """One record per source PDF, in first-seen order: the newest ok record, else the newest
    error record. A record is dated by its `provenance.created`, else by its file's mtime."""
    best: dict[str, tuple[tuple[bool, datetime], DigestRecord]] = {}
    order: list[str] = []
    for index, (record, modified) in enumerate(found):
        paper = record.source_sha256 or f"#{index}"
        rank = (record.status == STATUS_OK, _created(record) or modified)
        if paper not in best:
            order.append(paper)
        if paper not in best or rank >= best[paper][0]:
            best[paper] = (rank, record)
    return [best[paper][1] for paper in order]


def _created(record: DigestRecord) -> datetime | None:
    try:
        created = datetime.fromisoformat(str(record.provenance["created"]))
    except (KeyError, ValueError):
        return None
    return created if created.tzinfo else created.replace(tzinfo=timezone.utc)


def _modified(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def write_digest(
    records: list[DigestRecord], out_dir: Path, formats: list[str], settings: Settings
) -> list[Path]:
    """Write digest.<fmt> for each built-in format into out_dir; returns the paths written.

    Everything is rendered before anything is written, so a template error leaves old files intact.
    `formats` are built-in format names, as the `formats` setting holds them (checked there).
    """
    rendered = {
        fmt: render(records, fmt, settings=settings, order=settings.order) for fmt in formats
    }
    written = []
    for fmt, text in rendered.items():
        target = out_dir / FORMAT_FILES[fmt]
        write_atomic(target, text)
        written.append(target)
    return written
