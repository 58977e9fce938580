#!/usr/bin/env python3
"""Prepare a reader's judgment of digests (issue 14): one brief per paper for a judge.

For every ok record in RECORDS (a digest output directory or the record store in its records/),
writes under OUT:
the judge's view of the record (title, 概要, summary, Q&A with cited pages; no flags, no
variant name), the paper's text by page (`../shared/judge/paper_text.py`'s format) and a brief
naming the rubric, both files and where to write the JSON. Tags are random, so a judge cannot
tell which variant it reads; OUT/tags.tsv maps tag -> variant, paper. Tally afterwards with
`python3 ../shared/judge/aggregate.py OUT/<tags of a variant>.out.json ...`.

Usage: judge_prep.py RECORDS VARIANT OUT [--rubric ../shared/judge/RUBRIC.md]
"""

from __future__ import annotations

import argparse
import json
import secrets
from pathlib import Path

from localdigest.store import RecordStore

BRIEF = """You are a strict bilingual (Japanese/English) ML researcher judging one machine-written \
Japanese digest of a research paper against the paper's own text.

1. Read the rubric: {rubric} (follow it exactly; it defines the JSON fields).
2. Read the paper's text by page: {text} (the abstract is on page 1).
3. Read the digest record: {record} (概要 = Japanese translation of the abstract, summary = \
one-line summary, qa = question/answer pairs with the pages they cite).
4. Judge every 概要 sentence against the English abstract, the summary, and every Q&A pair against \
the paper text, strictly and literally as the rubric says. Use "paper": "{stem}".
5. Write ONLY the JSON object (no prose, no markdown fence) to {out} and check that it parses.

Do not modify any other file. Reply with one line: the path you wrote.
"""


def judge_view(record: dict, stem: str) -> dict:
    """What the judge reads: the Japanese a reader sees, with the pages each answer cites."""
    return {
        "paper": stem,
        "title": record["metadata"].get("title"),
        "概要": record.get("abstract_ja"),
        "summary": record.get("summary_ja"),
        "qa": [
            {"i": i, "question": q["question"], "answer": q["answer"], "pages": q.get("pages", [])}
            for i, q in enumerate(record.get("qa", []), 1)
        ],
    }


def paper_text(pdf: Path) -> str:
    import pymupdf

    with pymupdf.open(pdf) as doc:
        return "".join(f"\n===== page {i + 1} =====\n{p.get_text()}" for i, p in enumerate(doc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("variant")
    parser.add_argument("out", type=Path)
    parser.add_argument("--rubric", type=Path, default=Path("../shared/judge/RUBRIC.md"))
    args = parser.parse_args()
    nested = args.records / "records" / "records"  # a digest output dir holds the store in records/
    root = args.records / "records" if nested.is_dir() else args.records
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "tags.tsv").open("a", encoding="utf-8") as tags:
        for _, record in RecordStore(root).records():
            if record.status != "ok":
                continue
            stem = Path(record.source_path).stem.split("_")[0]
            tag = "j" + secrets.token_hex(3)
            view = judge_view(record.to_dict(), stem)
            (args.out / f"{tag}.record.json").write_text(
                json.dumps(view, ensure_ascii=False, indent=1), encoding="utf-8"
            )
            text = args.out / f"{stem}.txt"
            if not text.exists():
                text.write_text(paper_text(Path(record.source_path)), encoding="utf-8")
            brief = BRIEF.format(
                rubric=args.rubric.resolve(), text=text.resolve(), stem=stem,
                record=(args.out / f"{tag}.record.json").resolve(),
                out=(args.out / f"{tag}.out.json").resolve(),
            )  # fmt: skip
            (args.out / f"{tag}.brief.txt").write_text(brief, encoding="utf-8")
            tags.write(f"{tag}\t{args.variant}\t{stem}\n")
            print(tag, args.variant, stem)


if __name__ == "__main__":
    main()
