"""Paper structure from ordered paragraphs: headings, sections and their kinds, title, authors,
abstract."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from localdigest.extract.layout import Line, PageText, Paragraph, join_hyphenated, paragraph_text
from localdigest.paper import (
    ABSTRACT,
    ACKNOWLEDGMENTS,
    APPENDIX,
    BODY,
    FRONT,
    REFERENCES,
    Block,
    Section,
)

_NUMBERED_RE = re.compile(
    r"^(?P<num>\d{1,2}(?:\.\d{1,2}){0,3}|[A-H](?:\.\d{1,2}){0,3}|[IVX]{1,5})\.?\s+"
    r"(?P<title>[A-Z][^\n]{1,110})$"
)
_NAMED = {
    "abstract": ABSTRACT,
    "references": REFERENCES,
    "reference": REFERENCES,
    "bibliography": REFERENCES,
    "literature cited": REFERENCES,
    "works cited": REFERENCES,
    "acknowledgments": ACKNOWLEDGMENTS,
    "acknowledgements": ACKNOWLEDGMENTS,
    "acknowledgment": ACKNOWLEDGMENTS,
    "acknowledgement": ACKNOWLEDGMENTS,
    "funding": ACKNOWLEDGMENTS,
    "appendix": APPENDIX,
    "appendices": APPENDIX,
    "supplementary material": APPENDIX,
    "supplementary materials": APPENDIX,
    "supplemental material": APPENDIX,
    "checklist": APPENDIX,
}
_COMMON_BODY = {
    "introduction",
    "related work",
    "related works",
    "background",
    "method",
    "methods",
    "methodology",
    "experiments",
    "experimental setup",
    "results",
    "evaluation",
    "discussion",
    "conclusion",
    "conclusions",
    "conclusion and future work",
    "conclusions and future work",
    "future work",
    "limitations",
    "broader impact",
    "broader impacts",
    "ethics statement",
    "ethical considerations",
    "summary",
    "preliminaries",
    "analysis",
}
_LETTERED_RE = re.compile(r"^[A-H](?:\.\d+)*$")
_APPENDIX_RE = re.compile(r"^(?:appendix|appendices|supplementary)\b", re.I)
# "Abstract—We ...", "Abstract: We ...", and Springer's "Abstract In recent years ..."
_ABSTRACT_RUN_IN_RE = re.compile(r"^abstract(?:\s*[—–\-:.]\s*|\s+(?=[A-Z]))", re.I)
_FRONT_MATTER_END_RE = re.compile(
    r"^(?:index terms|keywords|key words|additional key words|ccs concepts|acm reference format)",
    re.I,
)
_AUTHOR_STOPWORDS = re.compile(
    r"universit|institut|inc\b|lab\b|labs\b|research|department|school|college|center|centre|"
    r"google|microsoft|corporation|academy|group|@|http|abstract|\d{3}|preprint|conference",
    re.I,
)
_NAME_TOKEN_RE = re.compile(r"^(?:[A-Z][a-zA-Z'’\-]+\.?|[A-Z]\.(?:[A-Z]\.)*|de|van|von|der|la|da)$")


def _heading_key(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


@dataclass
class HeadingRules:
    """Decides which lines are headings, given the document's body font size."""

    body: float
    roman_sections: bool = False

    def styled(self, line: Line) -> bool:
        return line.bold or line.max_size >= self.body + 0.8 or _all_caps(line.text)

    def __call__(self, line: Line) -> bool:
        return self.match(line) is not None

    def match(self, line: Line) -> tuple[str | None, str, int] | None:
        """(number, title, level) when the line is a heading, else None."""
        text = line.text.strip()
        if len(text) > 120 or len(text.split()) > 16 or line.max_size < self.body - 1.5:
            return None
        numbered = _NUMBERED_RE.match(text)
        if numbered and (self.styled(line) or line.italic) and not text.endswith((".", ",")):
            number = numbered["num"]
            title = numbered["title"].strip()
            if number.isdigit() and int(number) > 30:
                return None
            if re.fullmatch(r"[IVX]+", number):
                return number, title, 1
            if number[0].isalpha() and len(number) == 1 and self.roman_sections:
                return number, title, 2
            if number[0].isalpha() and len(number) == 1 and not (line.bold or _all_caps(title)):
                return None
            return number, title, number.count(".") + 1
        key = _heading_key(text)
        named = key in _NAMED or key in _COMMON_BODY or _APPENDIX_RE.match(text)
        if named and (self.styled(line) or line.italic):
            return None, text, 1
        return None


def _all_caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and all(c.isupper() for c in letters)


def heading_kind(title: str) -> str:
    key = _heading_key(title)
    if key in _NAMED:
        return _NAMED[key]
    if _APPENDIX_RE.match(title):
        return APPENDIX
    return BODY


def build_sections(
    paragraphs: list[Paragraph], rules: HeadingRules, vocab: Counter[str]
) -> list[Section]:
    """Sections in document order. Kinds: front matter, abstract, body, acknowledgments,
    references, appendix. After the references only appendix-like headings start a new part,
    so a bold line inside the bibliography does not end it."""
    sections = [Section(title="", kind=FRONT)]
    state = FRONT
    abstract_size = 0.0  # the type size of the abstract's first paragraph, once it has one
    for paragraph in paragraphs:
        first = paragraph.lines[0]
        heading = rules.match(first) if len(paragraph.lines) == 1 else None
        if heading is not None:
            number, title, level = heading
            kind = heading_kind(title)
            lettered = bool(number and _LETTERED_RE.match(number)) and not rules.roman_sections
            if state in (REFERENCES, APPENDIX) and kind == BODY:
                if state == REFERENCES and not lettered:
                    sections[-1].blocks.append(Block(first.text, first.page))
                    continue
                kind = APPENDIX
            elif kind == BODY and lettered and state != FRONT:
                kind = APPENDIX
            if kind == BODY and state == APPENDIX:
                kind = APPENDIX
            sections.append(Section(title=title, kind=kind, number=number, level=level))
            abstract_size = 0.0
            if kind != ACKNOWLEDGMENTS:
                state = kind
            continue
        text = paragraph_text(paragraph, vocab)
        current = sections[-1]
        if current.kind == FRONT and (run_in := _ABSTRACT_RUN_IN_RE.match(text)):
            sections.append(Section(title="Abstract", kind=ABSTRACT))
            abstract_size = paragraph.lines[0].size
            text = text[run_in.end() :]
            state = ABSTRACT
        elif current.kind == ABSTRACT:
            abstract_size = abstract_size or paragraph.lines[0].size
            if _FRONT_MATTER_END_RE.match(text) or _other_size(abstract_size, paragraph):
                sections.append(Section(title="", kind=FRONT))
        if text:
            sections[-1].blocks.append(Block(text, paragraph.page))
    return [s for s in sections if s.blocks or s.kind not in (FRONT,)]


def _other_size(abstract_size: float, paragraph: Paragraph) -> bool:
    """A paragraph in another type size than the abstract's first (a dedication, a footnote)
    is not part of it."""
    return abs(paragraph.lines[0].size - abstract_size) > 0.8


def infer_abstract(sections: list[Section]) -> None:
    """Papers without an "Abstract" heading (ACM journals): the first long front paragraph and
    those after it, up to keywords or the first heading."""
    if any(s.kind == ABSTRACT for s in sections) or not sections or sections[0].kind != FRONT:
        return
    front = sections[0]
    for index, block in enumerate(front.blocks):
        if len(block.text.split()) >= 60 and not _FRONT_MATTER_END_RE.match(block.text):
            rest = front.blocks[index:]
            end = next(
                (i for i, b in enumerate(rest) if _FRONT_MATTER_END_RE.match(b.text)), len(rest)
            )
            front.blocks = front.blocks[:index]
            abstract = Section(title="Abstract", kind=ABSTRACT, blocks=rest[:end])
            after = Section(title="", kind=FRONT, blocks=rest[end:])
            sections[1:1] = [abstract] + ([after] if after.blocks else [])
            return


def find_title(page: PageText, vocab: Counter[str]) -> tuple[str | None, list[Line]]:
    """The title: the largest type near the top of the first page, over one or more lines."""
    candidates = [
        ln
        for ln in page.lines
        if ln.y0 < 0.3 * page.height and sum(c.isalpha() for c in ln.text) >= 3
    ]
    if not candidates:
        return None, []
    largest = max(ln.max_size for ln in candidates)
    start = next(
        ln for ln in sorted(candidates, key=lambda ln: ln.y0) if ln.max_size > largest - 0.6
    )
    title_lines = [start]
    for line in sorted(candidates, key=lambda ln: ln.y0):
        last = title_lines[-1]
        if line.y0 <= last.y0:
            continue
        close = line.y0 - last.y1 < 1.2 * last.size
        same_style = line.bold == start.bold and abs(line.max_size - largest) < 1.0
        same_block = line.block == start.block and line.max_size > 0.75 * largest
        if close and (same_style or same_block):
            title_lines.append(line)
        elif line.y0 > last.y1:
            break
    text = title_lines[0].text
    for line in title_lines[1:]:
        if text.endswith("-"):
            text = join_hyphenated(text, line.text, vocab)
        else:
            text = f"{text} {line.text}"
    return text.strip(), title_lines


def find_authors(page: PageText, title_lines: list[Line], stop_y: float) -> list[str]:
    """Author names from the lines between the title and the abstract (or first heading)."""
    if not title_lines:
        return []
    top = max(ln.y1 for ln in title_lines)
    lines = [ln for ln in page.lines if top <= ln.y0 < stop_y and ln not in title_lines]
    if any(ln.bold for ln in lines):
        lines = [ln for ln in lines if ln.bold]
    names: list[str] = []
    for line in sorted(lines, key=lambda ln: (ln.y0, ln.x0)):
        if _AUTHOR_STOPWORDS.search(line.text):
            continue
        for part in line.parts or [line.text]:
            cleaned = re.sub(r"[∗*†‡§¶♦♣⋆♠♥]|(?<=[a-z])\d+|\s\d+(?:,\d+)*\b", " ", part)
            for chunk in re.split(r",|\band\b|&|\s{2,}", cleaned):
                name = " ".join(chunk.split())
                tokens = name.split()
                if 2 <= len(tokens) <= 5 and all(_NAME_TOKEN_RE.match(t) for t in tokens):
                    names.append(name)
    return list(dict.fromkeys(names))


def split_metadata_authors(raw: str) -> list[str]:
    """Names from a PDF's Author field ("A, B and C" or "A; B")."""
    parts = re.split(r"\s*[;,]\s*|\s+and\s+", raw)
    return [p.strip() for p in parts if len(p.strip().split()) >= 2]
