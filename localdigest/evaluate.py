"""Score digests without a model: the defect checks generation runs (prompt echo, English
copied, Chinese, Cyrillic/Hangul, loops, garbled terms), answers whose names or numbers are not
in the sentences they cite, plus Japanese share, completeness, duplicates, restated questions
and grounding in the paper (concrete details, unknown numbers).

These checks find defects; they do not measure truth. A reader's judgment (the rubric in
../shared/judge) is what tells whether a digest is right.

Works on our records (grounded against the source PDF's text when it can be read) and on a
published digest page in the reference text format (no source PDFs: grounding left blank).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from localdigest import textcheck
from localdigest.generate import checks
from localdigest.paper import PaperMetadata
from localdigest.record import STATUS_OK, DigestRecord, Problem, QAPair, SentencePair


@dataclass
class PaperScore:
    title: str
    asked: int
    pairs: int
    japanese_share: float  # median over answers
    duplicate_questions: int
    restating_answers: int
    broken_terms: int
    concrete_answers: int | None = None  # None: no source text to ground against
    numbers: int | None = None
    unknown_numbers: int | None = None
    unknown_examples: list[str] = field(default_factory=list)
    defects: dict[str, int] = field(default_factory=dict)  # kind -> outputs that have it
    checked: int = 0  # outputs (概要 sentences, answers) the defect checks ran on
    ungrounded: int | None = None  # answers with names/numbers not in their cited sentences

    @property
    def concrete_share(self) -> float | None:
        if self.concrete_answers is None or not self.pairs:
            return None
        return self.concrete_answers / self.pairs


def output_problems(text: str, source: str | None = None) -> list[Problem]:
    """The checks generation runs: against the English source where the record keeps it."""
    if source:
        return checks.translation_problems(source, text, truncated=False)
    return checks.problems_of(checks.Output(text))


def count_defects(score: PaperScore, problems_per_output: list[list[Problem]]) -> None:
    """Per column of `checks.CHECKS`' `counted`: the outputs with a problem it counts."""
    score.checked += len(problems_per_output)
    for column in checks.counted_columns():
        hit = sum(
            any(checks.row(p.kind).counted == column for p in problems)
            for problems in problems_per_output
        )
        score.defects[column] = score.defects.get(column, 0) + hit


def score_paper(
    title: str,
    qa: list[QAPair],
    asked: int,
    source_text: str | None = None,
    abstract: list[SentencePair] | None = None,
) -> PaperScore:
    questions = [p.question for p in qa]
    shares = [textcheck.japanese_share(p.answer) for p in qa]
    score = PaperScore(
        title=title,
        asked=asked,
        pairs=len(qa),
        japanese_share=statistics.median(shares) if shares else 0.0,
        duplicate_questions=len(textcheck.near_duplicates(questions)),
        restating_answers=sum(textcheck.restates(p.question, p.answer) for p in qa),
        broken_terms=sum(len(textcheck.broken_mixed_script(p.answer)) for p in qa),
    )
    outputs = [output_problems(p.text, p.source) for p in abstract or [] if not p.untranslated]
    count_defects(score, outputs + [output_problems(p.answer) for p in qa if p.answer])
    with_evidence = [p for p in qa if p.evidence]
    if with_evidence:
        score.ungrounded = sum(
            bool(checks.details_not_in(p.answer, [e.text for e in p.evidence]))
            for p in with_evidence
        )
    if source_text:
        index = textcheck.SourceIndex(source_text)
        score.concrete_answers = sum(bool(index.concrete_details(p.answer, p.question)) for p in qa)
        all_numbers = [n for p in qa for n in textcheck.numbers(p.answer)]
        unknown = [n for p in qa for n in index.unknown_numbers(p.answer)]
        score.numbers, score.unknown_numbers = len(all_numbers), len(unknown)
        score.unknown_examples = unknown[:5]
    return score


def pdf_source_text(record: DigestRecord) -> str | None:
    """The whole text of the record's source PDF, or None when it cannot be read here."""
    path = Path(record.source_path)
    if not path.is_file():
        return None
    import pymupdf

    try:
        with pymupdf.open(path) as doc:
            return "\n".join(page.get_text() for page in doc)
    except Exception:  # any unreadable PDF just means "no grounding columns" for this paper
        return None


def score_records(
    records: list[DigestRecord],
    source_text: Callable[[DigestRecord], str | None] = pdf_source_text,
) -> list[PaperScore]:
    scores = []
    for record in records:
        if record.status != STATUS_OK:
            continue
        asked = int(record.provenance.get("options", {}).get("questions", len(record.qa)))
        title = record.metadata.title or Path(record.source_path).name
        scores.append(
            score_paper(title, record.qa, asked, source_text(record), record.abstract_sentences)
        )
    return scores


def parse_reference_digest(text: str) -> list[tuple[PaperMetadata, list[QAPair]]]:
    """Papers of a digest page in the reference text format (title line, 著者:, ..., Q:/A:)."""
    lines = text.splitlines()
    papers: list[tuple[PaperMetadata, list[QAPair]]] = []
    for i, line in enumerate(lines):
        if line.startswith("著者:") and i > 0:
            papers.append((PaperMetadata(title=lines[i - 1].strip(), source="reference"), []))
        elif papers and line.startswith("Q: "):
            papers[-1][1].append(QAPair(question=line[3:].strip(), answer=""))
        elif papers and line.startswith("A: ") and papers[-1][1]:
            papers[-1][1][-1].answer = line[3:].strip()
    return papers


def score_reference(text: str, asked: int = 10) -> list[PaperScore]:
    return [score_paper(meta.title or "?", qa, asked) for meta, qa in parse_reference_digest(text)]


def _fmt(value: float | int | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{100 * value:.0f}%"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def format_table(scores: list[PaperScore]) -> str:
    """A fixed-width table per paper plus a totals line with the targets' aggregates."""
    header = (
        f"{'paper':<40} {'pairs':>7} {'ja':>5} {'dupQ':>4} {'restate':>7} "
        f"{'concrete':>8} {'num?':>9} {'broken':>6} {'leak':>4} {'en':>3} {'zh':>3} "
        f"{'loop':>4} {'uncited':>7}"
    )
    rows = [header, "-" * len(header)]
    for s in scores:
        unknown = f"{s.unknown_numbers}/{s.numbers}" if s.numbers is not None else "-"
        rows.append(
            f"{s.title[:40]:<40} {f'{s.pairs}/{s.asked}':>7} {s.japanese_share:>5.2f} "
            f"{s.duplicate_questions:>4} {s.restating_answers:>7} "
            f"{_fmt(s.concrete_share, pct=True):>8} {unknown:>9} {s.broken_terms:>6} "
            f"{s.defects['leak']:>4} {s.defects['english']:>3} {s.defects['chinese']:>3} "
            f"{s.defects['loop']:>4} {_fmt(s.ungrounded):>7}"
        )
    rows.append("-" * len(header))
    rows.append(summary_line(scores))
    return "\n".join(rows)


def summary_line(scores: list[PaperScore]) -> str:
    if not scores:
        return "no papers scored"
    pairs = sum(s.pairs for s in scores)
    grounded = [s for s in scores if s.concrete_answers is not None]
    concrete = sum(s.concrete_answers or 0 for s in grounded)
    grounded_pairs = sum(s.pairs for s in grounded)
    numbers = sum(s.numbers or 0 for s in grounded)
    unknown = sum(s.unknown_numbers or 0 for s in grounded)
    parts = [
        f"papers {len(scores)}",
        f"median ja share {statistics.median(s.japanese_share for s in scores):.2f}",
        f"complete {sum(s.pairs >= s.asked for s in scores)}/{len(scores)}",
        f"duplicate questions {sum(s.duplicate_questions for s in scores)}",
        f"restating answers {sum(s.restating_answers for s in scores)}/{pairs}",
        f"broken terms/paper {sum(s.broken_terms for s in scores) / len(scores):.1f}",
    ]
    checked = sum(s.checked for s in scores)
    for kind in checks.counted_columns():
        hits = sum(s.defects[kind] for s in scores)
        parts.append(f"{kind} {hits}/{checked}")
    cited = [s for s in scores if s.ungrounded is not None]
    if cited:
        answers = sum(s.pairs for s in cited)
        ungrounded = sum(s.ungrounded or 0 for s in cited)
        parts.append(f"answers beyond their cited sentences {ungrounded}/{answers}")
    if grounded_pairs:
        parts.append(f"concrete answers {100 * concrete / grounded_pairs:.0f}%")
        parts.append(
            f"unknown numbers {unknown}/{numbers}"
            + (f" ({100 * unknown / numbers:.1f}%)" if numbers else "")
        )
    return "TOTAL: " + ", ".join(parts)
