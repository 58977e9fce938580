#!/usr/bin/env python3
"""Calibrate answer selection on reader verdicts (issue 25): how well the model's P(yes) and
the checks of what each question needs separate sentences that answer their question from
sentences that do not, and how many aspects each threshold keeps.

Usage:
  calibrate_selection.py dump OUT.jsonl PDF... [--threads N]
      every cue-shortlisted (aspect, sentence) pair of each PDF with its P(yes) and whether it
      meets what the aspect needs; and OUT.blind/<paper>.json for a judge (no scores shown)
  calibrate_selection.py tally OUT.jsonl JUDGED.json...
      JUDGED: a judge's [{"id": ..., "answers": "yes" | "partly" | "no"}, ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from localdigest import extract
from localdigest.backends import load_backend
from localdigest.config import Settings
from localdigest.generate import select
from localdigest.generate.digester import TASK_TOKENS
from localdigest.generate.tasks import StageLog, TaskRunner
from localdigest.prompts import PromptSet

MODEL = "models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"  # the default model, installed
THRESHOLDS = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)


def dump(out: Path, pdfs: list[str], threads: int) -> None:
    settings = Settings(model=MODEL, threads=threads)
    backend = load_backend(settings, TASK_TOKENS)
    prompts = PromptSet()
    picker = select.SentencePicker(prompts, TaskRunner(backend, settings, StageLog()))
    blind_dir = out.with_suffix(".blind")
    blind_dir.mkdir(exist_ok=True)
    with out.open("w", encoding="utf-8") as rows:
        for pdf in pdfs:
            paper = extract.paper(pdf, max_pages=settings.max_pages)
            pool, _ = select.candidates(paper)
            lists = {a.key: select.shortlist(a, pool, every=True) for a in prompts.aspects}
            yes = picker.yes_probabilities(paper, prompts.aspects, lists)
            stem = Path(pdf).stem.split("_")[0]
            blind = []
            for aspect in prompts.aspects:
                for candidate in lists[aspect.key]:
                    text = " ".join(candidate.sentences)
                    item = {
                        "id": f"{stem}/{aspect.key}/{candidate.index}",
                        "question": aspect.question,
                        "asks_for": aspect.description,
                        "answer_sentences": text,
                    }
                    blind.append(item)
                    rows.write(json.dumps({
                        **item, "paper": stem, "aspect": aspect.key,
                        "p_yes": round(yes[aspect.key, candidate.index], 4),
                        "needs_met": select.NEEDS[aspect.needs](text),
                    }, ensure_ascii=False) + "\n")  # fmt: skip
            (blind_dir / f"{stem}.json").write_text(
                json.dumps(blind, ensure_ascii=False, indent=1), encoding="utf-8"
            )
            print(f"{stem}: {len(blind)} pairs", file=sys.stderr)


def auc(positives: list[float], negatives: list[float]) -> float:
    """P(score of a positive > score of a negative), ties counted half."""
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    return sum(pairs) / len(pairs) if pairs else float("nan")


def tally(rows_path: Path, judged_paths: list[str]) -> None:
    rows = {r["id"]: r for r in map(json.loads, rows_path.read_text().splitlines())}
    verdicts = {
        j["id"]: j["answers"] for p in judged_paths for j in json.loads(Path(p).read_text())
    }
    judged = [(rows[i], v) for i, v in verdicts.items() if i in rows]
    good = [r["p_yes"] for r, v in judged if v == "yes"]
    bad = [r["p_yes"] for r, v in judged if v != "yes"]
    print(f"{len(judged)} judged pairs: {len(good)} answer, {len(bad)} partly or not")
    print(f"AUC of P(yes), answers vs rest: {auc(good, bad):.2f}")
    met = [v for r, v in judged if r["needs_met"]]
    unmet = [v for r, v in judged if not r["needs_met"]]
    for name, group in (("needs met", met), ("needs not met", unmet)):
        share = sum(v == "yes" for v in group) / len(group) if group else float("nan")
        print(f"{name}: {len(group)} pairs, answer {share:.2f}")
    print("threshold  kept  answer-of-kept  aspects-with-an-answer-kept (per paper)")
    papers = {r["paper"] for r, _ in judged}
    for threshold in THRESHOLDS:
        kept = [v for r, v in judged if r["needs_met"] and r["p_yes"] >= threshold]
        share = sum(v == "yes" for v in kept) / len(kept) if kept else float("nan")
        best = _best_per_aspect(judged, threshold)
        answered = sum(v == "yes" for v in best.values()) / len(best) if best else float("nan")
        print(f"{threshold:9.2f}  {len(kept):4d}  {share:14.2f}  "
              f"{len(best) / len(papers):.1f} aspects/paper, their best answers {answered:.2f}")  # fmt: skip


def _best_per_aspect(judged: list[tuple[dict, str]], threshold: float) -> dict[str, str]:
    """The verdict on each (paper, aspect)'s most probable sentence meeting its needs."""
    best: dict[str, tuple[float, str]] = {}
    for row, verdict in judged:
        key = f"{row['paper']}/{row['aspect']}"
        if (
            row["needs_met"]
            and row["p_yes"] >= threshold
            and row["p_yes"] > best.get(key, (-1, ""))[0]
        ):
            best[key] = (row["p_yes"], verdict)
    return {k: v for k, (_, v) in best.items()}


if __name__ == "__main__":
    command, target, *rest = sys.argv[1:]
    if command == "dump":
        threads = int(rest[rest.index("--threads") + 1]) if "--threads" in rest else 0
        pdfs = [x for i, x in enumerate(rest) if x != "--threads" and rest[i - 1] != "--threads"]
        dump(Path(target), pdfs, threads)
    else:
        tally(Path(target), rest)
