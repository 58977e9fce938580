"""Measure PDF extraction on the corpus: title, arXiv id, abstract, references, speed.

Usage: eval_extract.py CORPUS_DIR [--engine blocks|pymupdf4llm]

`blocks` is localdigest's extractor; `pymupdf4llm` turns pymupdf4llm's layout-aware Markdown into
sections the same way, for comparison. Expected titles and arXiv ids come from CORPUS/MANIFEST.tsv;
the abstract has no reference text there, so it is checked for shape: found, 40-600 words,
starting with a capital letter (not the word "Abstract"), ending a sentence, and holding no
keywords line or introduction heading.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from pathlib import Path

from localdigest.extract import paper as extract_paper
from localdigest.extract.structure import heading_kind
from localdigest.paper import (
    ABSTRACT,
    BODY,
    FRONT,
    REFERENCES,
    Block,
    Paper,
    PaperMetadata,
    Section,
)

# Phrases that fill reference lists and rarely occur in running text.
_REFERENCE_MARKERS = re.compile(
    r"in proceedings of|arxiv preprint|advances in neural information processing systems"
    r"|url https?://|doi:|\bproc\.|\bpp\. \d|\bvol\. \d|\b(?:19|20)\d\d[a-z]?\.\s+[A-Z]",
    re.I,
)
MAX_MARKERS_IN_BODY = 8
_ABSTRACT_JUNK = re.compile(
    r"\b(?:index terms|keywords|ccs concepts)\b|\b1\.? introduction\b", re.I
)


def normalised(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def expected_id(field: str) -> tuple[str | None, int | None]:
    """("1707.04926", 3) from "1707.04926 (v3)"; no version means the PDF carries no stamp."""
    match = re.match(r"(\S+)\s+\(v(\d+)\)", field)
    return (match[1], int(match[2])) if match else (None, None)


def abstract_ok(abstract: str | None) -> bool:
    if not abstract:
        return False
    words = abstract.split()
    return (40 <= len(words) <= 600 and abstract[0].isupper() or abstract[:1].isdigit()) and (
        not abstract.lower().startswith("abstract")
        and abstract.rstrip(")]”\"'0123456789").endswith((".", "!", "?"))
        and not _ABSTRACT_JUNK.search(abstract)
    )


def reference_markers(paper: Paper) -> tuple[int, int]:
    """(markers in the references sections, markers left in abstract and body)."""
    refs = "\n".join(s.text for s in paper.sections_of(REFERENCES))
    return len(_REFERENCE_MARKERS.findall(refs)), len(_REFERENCE_MARKERS.findall(paper.body_text))


def references_ok(paper: Paper) -> bool:
    """No reference list left in the body (a paper excerpt may have none at all)."""
    return reference_markers(paper)[1] <= MAX_MARKERS_IN_BODY


def markdown_paper(path: Path) -> Paper:
    """A Paper from pymupdf4llm's Markdown: '#' lines are headings, blank lines end paragraphs."""
    import pymupdf4llm

    chunks = pymupdf4llm.to_markdown(str(path), page_chunks=True, show_progress=False)
    sections = [Section(title="", kind=FRONT)]
    title = None
    for number, chunk in enumerate(chunks, start=1):
        for para in re.split(r"\n\s*\n", chunk["text"]):
            text = " ".join(para.replace("**", "").replace("_", "").split())
            if not text:
                continue
            if text.startswith("#"):
                heading = text.lstrip("#").strip()
                if title is None:
                    title = heading
                    continue
                heading = re.sub(r"^[\dA-Z](?:\.\d+)*\.?\s+", "", heading)
                kind = heading_kind(heading)
                if sections[-1].kind == REFERENCES and kind == BODY:
                    kind = REFERENCES
                sections.append(Section(title=heading, kind=kind))
                continue
            if sections[-1].kind == FRONT and re.match(r"^abstract\s*[—–\-:.]", text, re.I):
                sections.append(Section(title="Abstract", kind=ABSTRACT))
                text = re.sub(r"^abstract\s*[—–\-:.]\s*", "", text, flags=re.I)
            sections[-1].blocks.append(Block(text, number))
    abstract = next((s.text for s in sections if s.kind == ABSTRACT and s.blocks), None)
    meta = PaperMetadata(title=title, abstract=abstract and abstract.replace("\n\n", " "))
    return Paper(str(path), "", len(chunks), meta, sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--engine", choices=["blocks", "pymupdf4llm"], default="blocks")
    parser.add_argument("-v", "--verbose", action="store_true", help="show abstract ends")
    args = parser.parse_args()
    with (args.corpus / "MANIFEST.tsv").open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["kind"] == "paper"]
    rows.sort(key=lambda r: r["file"])
    header = (
        f"{'paper':<44} {'pages':>5} {'sec':>6}  title  arxiv  abstract  refs  (markers ref/body)"
    )
    print(f"engine: {args.engine}")
    print(header)
    print("-" * len(header))
    totals = {"title": 0, "arxiv": 0, "stamped": 0, "abstract": 0, "refs": 0}
    total_pages = 0
    total_time = 0.0
    for row in rows:
        path = args.corpus / row["file"]
        start = time.perf_counter()
        paper = extract_paper(path) if args.engine == "blocks" else markdown_paper(path)
        elapsed = time.perf_counter() - start
        total_time += elapsed
        total_pages += paper.pages_read or paper.page_count
        meta = paper.metadata
        title = normalised(meta.title or "") == normalised(row["title"])
        want_id, want_version = expected_id(row["arxiv_id"])
        stamped = want_id is not None
        arxiv = (meta.arxiv_id, meta.arxiv_version) == (want_id, want_version) if stamped else None
        abstract = abstract_ok(meta.abstract)
        refs = references_ok(paper)
        totals["title"] += title
        totals["stamped"] += stamped
        totals["arxiv"] += bool(arxiv)
        totals["abstract"] += abstract
        totals["refs"] += refs
        mark = {True: "ok", False: "FAIL", None: "-"}
        name = Path(row["file"]).name[:44]
        print(
            f"{name:<44} {paper.pages_read or paper.page_count:>5} {elapsed:>6.2f}  "
            f"{mark[title]:<5}  {mark[arxiv]:<5}  {mark[abstract]:<8}  {mark[refs]:<4}  "
            "({}/{})".format(*reference_markers(paper))
        )
        if not title:
            print(f"    title: {meta.title!r}")
        if args.verbose or not abstract:
            text = meta.abstract or ""
            print(f"    abstract: {text[:70]!r} ... {text[-70:]!r}")
    n = len(rows)
    print("-" * len(header))
    print(
        f"title {totals['title']}/{n}  arxiv id+version {totals['arxiv']}/{totals['stamped']}"
        f"  abstract {totals['abstract']}/{n}  references not in body {totals['refs']}/{n}"
    )
    print(
        f"{total_pages} pages in {total_time:.1f} s: {total_pages / total_time:.1f} pages/s "
        f"({total_time / n:.2f} s per paper)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
