"""Page layout: PyMuPDF text lines to paragraphs in reading order.

Works on PyMuPDF's `get_text("dict")` output. Removes what is not body text (running headers and
footers, page and line numbers, rotated margin text such as the arXiv stamp, text inside images,
figure labels and table cells, footnotes), orders two-column pages column by column, and joins
lines into paragraphs, undoing end-of-line hyphenation but keeping real compound hyphens.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

HEADER_ZONE = 0.09  # top/bottom fraction of the page where running headers and footers live
PAGE_SCAN_SHARE = 0.85  # an image covering this share of the page is a scanned page, not a figure
_PAGE_NUMBER_RE = re.compile(
    r"^(?:page\s*)?[#ivxlc]+(?:\s*(?:of|/)\s*#)?$|^[-–—]\s*#\s*[-–—]$", re.I
)
_CAPTION_RE = re.compile(r"^(?:Figure|Fig\.|Table|Algorithm|Listing)\s*[A-Z]?\d+", re.I)
_FOOTNOTE_RE = re.compile(
    r"^(?:[\d*∗†‡§¶]|proceedings of|copyright|correspondence|preprint|accepted|published|"
    r"work done|equal contribution)",
    re.I,
)
_WORD_RE = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")
_SENTENCE_END = (".", "?", "!", ":", ";")
# Prefixes that form hyphenated compounds far more often than they are split syllables.
COMPOUND_PREFIXES = frozenset(
    {"cross", "self", "non", "semi", "anti", "well", "state", "task", "end", "fine", "large"}
    | {"small", "high", "low", "long", "short", "zero", "few", "one", "two", "three", "co"}
)
BOLD_FLAG = 16
# TeX's Computer Modern bold faces (CMBX10, CMB10, CMSSBX10, in a subset "ABCDEF+CMBX10"), whose
# fonts carry no bold flag: a LaTeX paper's "1 Introduction" set in them was read as body text
_TEX_BOLD_FONT = re.compile(r"^(?:[a-z]{6}\+)?cm(?:bx|b\d|ssbx)")
ITALIC_FLAG = 2
SUPERSCRIPT_FLAG = 1
_EXPONENT_RE = re.compile(r"^[\-−–]?(?:\d+|[A-Za-z])$")


@dataclass
class Line:
    """One visual line of horizontal text (PyMuPDF lines at the same height merged)."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    size: float  # dominant font size (by characters)
    max_size: float  # largest font size on the line (small-caps titles mix two sizes)
    bold: bool
    italic: bool
    page: int
    block: int  # index of the PyMuPDF block it came from, unique per document
    baseline: float
    parts: list[str] = field(default_factory=list)  # texts of the merged PyMuPDF lines


@dataclass
class PageText:
    """The usable lines of one page plus what was set aside for metadata."""

    number: int
    width: float
    height: float
    lines: list[Line]
    rotated: list[str]  # vertical text: where the arXiv stamp lives
    image_boxes: list[tuple[float, float, float, float]]


def read_page(page: Any, number: int, block_offset: int) -> PageText:
    """Lines of a PyMuPDF page, with ligatures expanded and rotated text set aside."""
    import pymupdf

    flags = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP
    data = page.get_text("dict", flags=flags | pymupdf.TEXT_PRESERVE_IMAGES)
    rect = page.rect
    if page.rotation:  # coordinates come unrotated; turn them the way the page is shown
        _rotate(data, page.rotation_matrix, pymupdf.Matrix(page.rotation), pymupdf)
    lines: list[Line] = []
    rotated: list[str] = []
    images: list[tuple[float, float, float, float]] = []
    for block_index, block in enumerate(data["blocks"]):
        if block["type"] == 1:
            if not _is_page_scan(block["bbox"], rect):
                images.append(tuple(block["bbox"]))
            continue
        raw: list[Line] = []
        for line in block["lines"]:
            spans = [s for s in line["spans"] if s["text"].strip()]
            if not spans:
                continue
            text = join_spans(line["spans"]).strip()
            if abs(line["dir"][1]) > 0.2 or line["dir"][0] < 0:
                rotated.append(text)
                continue
            weights: Counter[float] = Counter()
            for s in spans:
                weights[round(s["size"], 1)] += len(s["text"].strip())
            dominant = max(spans, key=lambda s: len(s["text"].strip()))
            letters = [s for s in spans if any(c.isalpha() for c in s["text"])] or spans
            x0, y0, x1, y1 = line["bbox"]
            raw.append(
                Line(
                    text=" ".join(text.split()),
                    x0=x0,
                    y0=y0,
                    x1=x1,
                    y1=y1,
                    size=weights.most_common(1)[0][0],
                    max_size=max(s["size"] for s in letters),
                    bold=all(is_bold(s) for s in letters),
                    italic=all(s["flags"] & ITALIC_FLAG for s in letters),
                    page=number,
                    block=block_offset + block_index,
                    baseline=dominant["origin"][1],
                )
            )
        for group in _split_columns(raw, rect.width):
            lines.extend(_merge_same_height(group))
    return PageText(number, rect.width, rect.height, lines, rotated, images)


def _is_page_scan(bbox: tuple[float, float, float, float], page: Any) -> bool:
    """An image as large as the page is a scan under an OCR text layer (Acrobat Capture), not
    a figure: the text on it is the paper's (a 1994 IEEE paper lost all but 16 of 976 lines)."""
    x0, y0, x1, y1 = bbox
    return (x1 - x0) * (y1 - y0) >= PAGE_SCAN_SHARE * page.width * page.height


def join_spans(spans: list[dict[str, Any]]) -> str:
    """A line's text with superscripts made explicit: an exponent after a number or a single
    letter stays an exponent ("10" + sup "−7" -> "10^−7"), a mark after a word is a footnote or
    affiliation mark and goes ("model" + sup "1" -> "model").

    Why: PyMuPDF gives "10" and superscript "3" as "103", which the model then reads as one
    hundred and three (issue 14: "10^3-10^4 steps" became 「103〜104ステップ」).
    """
    text = ""
    for superscript, group in itertools.groupby(
        spans, key=lambda s: bool(s["flags"] & SUPERSCRIPT_FLAG and s["text"].strip())
    ):
        piece = "".join(s["text"] for s in group)
        if superscript:
            mark = piece.strip()
            if re.search(r"(?:\d|(?<![A-Za-z])[A-Za-z]|\))$", text) and _EXPONENT_RE.match(mark):
                piece = "^" + mark
            elif re.search(r"[A-Za-z.,;:)]$", text) and len(mark) <= 3:
                piece = ""  # footnote or affiliation mark: 1, *, †, a
        text += piece
    return text


def _rotate(data: dict[str, Any], to_page: Any, turn: Any, pymupdf: Any) -> None:
    for block in data["blocks"]:
        block["bbox"] = tuple(pymupdf.Rect(block["bbox"]) * to_page)
        for line in block.get("lines", []):
            line["bbox"] = tuple(pymupdf.Rect(line["bbox"]) * to_page)
            line["dir"] = tuple(pymupdf.Point(line["dir"]) * turn)
            for span in line["spans"]:
                span["origin"] = tuple(pymupdf.Point(span["origin"]) * to_page)


def is_bold(span: dict[str, Any]) -> bool:
    font = span["font"].lower()
    return (
        bool(span["flags"] & BOLD_FLAG)
        or "bold" in font
        or font.endswith(("-bd", "-b"))
        or bool(_TEX_BOLD_FONT.match(font))
    )


def _split_columns(lines: list[Line], width: float) -> list[list[Line]]:
    """MuPDF sometimes puts two columns' lines into one block when they share a baseline:
    give each column its own block again."""
    mid, slack = width / 2, 0.03 * width
    left = [ln for ln in lines if ln.x1 <= mid + slack]
    right = [ln for ln in lines if ln.x0 >= mid - slack]
    if not left or not right or len(left) + len(right) != len(lines):
        return [lines]
    for line in right:
        line.block += 5_000
    return [left, right]


def _merge_same_height(lines: list[Line]) -> list[Line]:
    """Join PyMuPDF lines of one block that sit on the same baseline ("1" + "INTRODUCTION")."""
    merged: list[Line] = []
    for line in sorted(lines, key=lambda ln: (round(ln.baseline), ln.x0)):
        prev = merged[-1] if merged else None
        if prev is not None and abs(prev.baseline - line.baseline) < 0.5 * prev.size:
            prev.parts.append(line.text)
            prev.text = f"{prev.text} {line.text}"
            prev.x1 = max(prev.x1, line.x1)
            prev.y0, prev.y1 = min(prev.y0, line.y0), max(prev.y1, line.y1)
            prev.max_size = max(prev.max_size, line.max_size)
            prev.bold = prev.bold and line.bold
            prev.italic = prev.italic and line.italic
            continue
        line.parts = [line.text]
        merged.append(line)
    return sorted(merged, key=lambda ln: ln.y0)


def _margin_key(text: str) -> str:
    return re.sub(r"\d+", "#", text.lower()).strip()


def remove_running_text(pages: list[PageText]) -> None:
    """Drop running headers/footers (text repeated near the top or bottom) and page numbers."""
    seen: Counter[str] = Counter()
    for page in pages:
        keys = {_margin_key(ln.text) for ln in page.lines if _in_margin_zone(ln, page)}
        seen.update(keys)
    repeated = max(2, int(0.3 * len(pages)))
    for page in pages:
        kept = []
        for line in page.lines:
            key = _margin_key(line.text)
            in_zone = _in_margin_zone(line, page)
            if in_zone and (seen[key] >= repeated or _PAGE_NUMBER_RE.match(key)):
                continue
            if _is_line_number(line, page):
                continue
            kept.append(line)
        page.lines = kept


def _in_margin_zone(line: Line, page: PageText) -> bool:
    return line.y1 < HEADER_ZONE * page.height or line.y0 > (1 - HEADER_ZONE) * page.height


def _is_line_number(line: Line, page: PageText) -> bool:
    """Review-copy line numbers: bare numbers in the left or right margin."""
    if not line.text.isdigit():
        return False
    return line.x1 < 0.1 * page.width or line.x0 > 0.9 * page.width


def body_size(pages: list[PageText]) -> float:
    """The font size most characters are set in: the body text's."""
    weights: Counter[float] = Counter()
    for page in pages:
        for line in page.lines:
            weights[round(line.size * 2) / 2] += len(line.text)
    return weights.most_common(1)[0][0] if weights else 10.0


def remove_non_body(page: PageText, body: float) -> None:
    """Drop text inside images, figure/table fragments and bottom-of-page footnotes."""
    blocks: dict[int, list[Line]] = {}
    for line in page.lines:
        blocks.setdefault(line.block, []).append(line)
    kept: list[Line] = []
    for block_lines in blocks.values():
        text = " ".join(ln.text for ln in block_lines)
        first = block_lines[0]
        if _CAPTION_RE.match(first.text) or _inside_image(block_lines, page):
            if _CAPTION_RE.match(first.text):
                kept.extend(block_lines)
            continue
        small = statistics.fmean(ln.max_size for ln in block_lines) < body - 0.8
        letters = sum(c.isalpha() for c in text)
        if letters < 0.45 * len(text.replace(" ", "")):
            continue  # numbers, math and table cells
        short = statistics.fmean(len(ln.text) for ln in block_lines) < 25
        if small and short and first.page > 1:
            continue  # figure labels and table cells
        if small and first.y0 > 0.72 * page.height and first.page > 1:
            continue  # footnotes
        if small and first.y0 > 0.72 * page.height and _FOOTNOTE_RE.match(first.text):
            continue  # first-page footnotes: affiliations, "Proceedings of ..."
        kept.extend(block_lines)
    page.lines = sorted(kept, key=lambda ln: (ln.block, ln.y0))


def _inside_image(lines: list[Line], page: PageText) -> bool:
    x0 = min(ln.x0 for ln in lines)
    y0 = min(ln.y0 for ln in lines)
    x1 = max(ln.x1 for ln in lines)
    y1 = max(ln.y1 for ln in lines)
    area = max((x1 - x0) * (y1 - y0), 1.0)
    for ix0, iy0, ix1, iy1 in page.image_boxes:
        w = min(x1, ix1) - max(x0, ix0)
        h = min(y1, iy1) - max(y0, iy0)
        if w > 0 and h > 0 and w * h > 0.8 * area:
            return True
    return False


def reading_order(page: PageText) -> list[Line]:
    """Lines in reading order: full-width blocks in place, two columns left before right."""
    blocks: dict[int, list[Line]] = {}
    for line in page.lines:
        blocks.setdefault(line.block, []).append(line)
    mid = page.width / 2
    slack = 0.03 * page.width
    boxes = []
    for block_lines in blocks.values():
        x0 = min(ln.x0 for ln in block_lines)
        x1 = max(ln.x1 for ln in block_lines)
        y0 = min(ln.y0 for ln in block_lines)
        side = "left" if x1 <= mid + slack else "right" if x0 >= mid - slack else "span"
        boxes.append((y0, x0, side, block_lines))
    chars: Counter[str] = Counter()
    for _, _, side, block_lines in boxes:
        chars[side] += sum(len(ln.text) for ln in block_lines)
    total = sum(chars.values()) or 1
    if chars["left"] < 0.2 * total or chars["right"] < 0.2 * total:
        boxes.sort(key=lambda b: (round(b[0]), b[1]))
        return [ln for b in boxes for ln in b[3]]
    ordered: list[Line] = []
    spans = sorted((b for b in boxes if b[2] == "span"), key=lambda b: b[0])
    columns = [b for b in boxes if b[2] != "span"]
    top = float("-inf")
    for bottom_box in [*spans, None]:
        bottom = bottom_box[0] if bottom_box else float("inf")
        region = [b for b in columns if top <= b[0] < bottom]
        for side in ("left", "right"):
            for box in sorted((b for b in region if b[2] == side), key=lambda b: b[0]):
                ordered.extend(box[3])
        if bottom_box:
            ordered.extend(bottom_box[3])
            top = bottom_box[0]
    return ordered


def vocabulary(pages: list[PageText]) -> Counter[str]:
    """Lower-case words (hyphenated forms included) of the document, for hyphenation choices."""
    words: Counter[str] = Counter()
    for page in pages:
        for line in page.lines:
            found = _WORD_RE.findall(line.text)
            if line.text.endswith("-"):
                found = found[:-1]  # "encod-": a fragment, not a word
            words.update(w.lower() for w in found[1:])  # a line's first word may be "er"
    return words


def join_hyphenated(left: str, right: str, vocab: Counter[str]) -> str:
    """Join two lines where `left` ends with a hyphen: "encod-" + "er" or "dual-" + "encoder".

    The hyphen is dropped when the joined word occurs in the document, kept when the hyphenated
    form or both halves occur as words, or after a compound prefix ("cross-", "self-");
    otherwise a lower-case continuation is joined.
    """
    prefix_match = re.search(r"([A-Za-z]+)-$", left)
    suffix_match = re.match(r"([A-Za-z]+)", right)
    if not prefix_match or not suffix_match:
        return f"{left}{right}" if left.endswith("-") else f"{left} {right}"
    prefix, suffix = prefix_match.group(1), suffix_match.group(1)
    joined = (prefix + suffix).lower()
    hyphenated = f"{prefix}-{suffix}".lower()
    if vocab[hyphenated] > vocab[joined] or (
        not vocab[joined] and len(prefix) >= 3 and vocab[prefix.lower()] and vocab[suffix.lower()]
    ):
        return f"{left}{right}"
    if vocab[joined] or (suffix[0].islower() and prefix.lower() not in COMPOUND_PREFIXES):
        return f"{left[:-1]}{right}"
    return f"{left}{right}"


@dataclass
class Paragraph:
    """Consecutive lines of one paragraph (or one heading candidate) on one page."""

    lines: list[Line]

    @property
    def page(self) -> int:
        return self.lines[0].page


def paragraphs(lines: list[Line], is_heading: Any) -> list[Paragraph]:
    """Group ordered lines into paragraphs; `is_heading(line)` lines stand alone."""
    pitches = [
        b.baseline - a.baseline
        for a, b in zip(lines, lines[1:], strict=False)
        if a.block == b.block and 0 < b.baseline - a.baseline < 3 * a.size
    ]
    pitch = statistics.median(pitches) if pitches else 12.0
    result: list[Paragraph] = []
    previous: Line | None = None
    for line in lines:
        heading = is_heading(line)
        if previous is None or heading or is_heading(previous) or _breaks(previous, line, pitch):
            result.append(Paragraph([line]))
        else:
            result[-1].lines.append(line)
        previous = line
    return result


def _breaks(a: Line, b: Line, pitch: float) -> bool:
    """Whether line b starts a new paragraph after line a."""
    unfinished = not a.text.endswith(_SENTENCE_END) and (b.text[:1].islower() or a.text[-1] == "-")
    if b.page != a.page or b.baseline < a.baseline - 2:  # next column or page
        return not unfinished
    if abs(a.size - b.size) > 0.8:
        return True
    if b.baseline - a.baseline > 1.45 * max(pitch, a.size):
        return True
    indent = b.x0 - a.x0
    return 0.7 * a.size < indent < 4 * a.size and not unfinished


def paragraph_text(paragraph: Paragraph, vocab: Counter[str]) -> str:
    text = ""
    for line in paragraph.lines:
        if not text:
            text = line.text
        elif text.endswith("-") and len(text) > 1 and text[-2].isalpha():
            text = join_hyphenated(text, line.text, vocab)
        else:
            text = f"{text} {line.text}"
    return text
