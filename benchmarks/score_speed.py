"""Forced-decoding cost: `LlamaBackend.score` against the one-pair-at-a-time path it replaced.

Two workloads from a corpus paper's sentences, as a digest scores them:
- channel: the translator's read-back prompt with a Japanese text, the English sentence as the
  reply (the Japanese is the worked examples' text cut to the sentence's length: the cost is
  that of real pairs, the scores are not meaningful);
- yes/no: short different prompts about one sentence each, scored against "Yes" and "No".

The old path is the scoring code of `--base` (one pair at a time in sequence 0, after giving up
the parked prompts), loaded from git into this process, so both run on one loaded model,
interleaved, each from the same cold cache. Only the ratio within one run means anything.

Example:
    .venv/bin/python benchmarks/score_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localdigest import models  # noqa: E402
from localdigest.backend import GenerationOptions, Message  # noqa: E402
from localdigest.backends.llama import LlamaBackend  # noqa: E402
from localdigest.config import load_settings  # noqa: E402
from localdigest.extract import paper as extract_paper  # noqa: E402
from localdigest.generate.select import split_sentences  # noqa: E402
from localdigest.prompts import PromptSet  # noqa: E402

Pairs = list[tuple[list[Message], str]]
PAPER = REPO.parent / "shared/corpus/papers/1706.08606v2_cognitive-psychology-shape-bias.pdf"
QUESTIONS = ["Does this sentence state a numerical result?", "Does it describe a method?",
             "Does it name a dataset?"]  # fmt: skip


def sentences(pdf: Path, count: int) -> list[str]:
    """The paper's first `count` body sentences of 60 to 300 characters."""
    text = " ".join(b.text for s in extract_paper(pdf).sections for b in s.blocks)
    found = [s for s in split_sentences(text) if 60 <= len(s) <= 300]
    if len(found) < count:
        raise SystemExit(f"{pdf.name} has {len(found)} usable sentences, not {count}")
    return found[:count]


def workloads(english: list[str], prompts: PromptSet) -> dict[str, Pairs]:
    reader = Message("system", prompts.render("read_back_system.j2"))
    japanese = "".join(j for _, j in prompts.translation_examples)
    channel = [
        ([reader, Message("user", (japanese * 4)[: max(20, len(e) // 2)])], e) for e in english[:40]
    ]
    asked = Message("system", "Answer the question about the sentence with Yes or No.")
    yes_no = [
        ([asked, Message("user", f"Sentence: {e}\nQuestion: {QUESTIONS[i % len(QUESTIONS)]}")], r)
        for i, e in enumerate(english[:60])
        for r in ("Yes", "No")
    ]
    return {"channel (40 pairs)": channel, "yes/no (60 prompts x 2)": yes_no}


def load_old_scoring(base: str) -> ModuleType:
    """`base`'s backends/scoring.py, importing `base`'s parallel.py (their Batch differs)."""
    for name in ("parallel", "scoring"):
        source = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{base}:localdigest/backends/{name}.py"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        source = source.replace("localdigest.backends.parallel", "_old_parallel")
        spec = importlib.util.spec_from_loader(f"_old_{name}", loader=None)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"_old_{name}"] = module  # before running it: dataclasses look it up
        exec(compile(source, f"{base}:{name}.py", "exec"), module.__dict__)
    return module


def old_path(backend: LlamaBackend, base: str) -> Callable[[Pairs], list[float]]:
    """`base`'s LlamaBackend.score: the parked prompts given up, then one pair at a time."""
    scoring = load_old_scoring(base)

    def score(pairs: Pairs) -> list[float]:
        if backend._pool is not None:
            backend._pool.keep_only(backend._memory(), None)
        return [
            scoring.mean_log_probability(
                backend._llm, backend.prompt_tokens(m), backend.tokenize(r)
            )
            for m, r in pairs
        ]

    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--base", default="e51ef85", help="commit of the old scoring path")
    parser.add_argument("--paper", type=Path, default=PAPER)
    parser.add_argument("--model", help="registry name or GGUF path (default: settings)")
    args = parser.parse_args(argv)

    settings = load_settings().with_flags(model=args.model)
    path = models.resolve(settings.model, models.models_dir(settings.models_dir)).path
    loads = workloads(sentences(args.paper, 60), PromptSet())
    with LlamaBackend(path, n_ctx=4096, n_threads=args.threads) as backend:
        paths = {"old": old_path(backend, args.base), "new": backend.score}
        print(f"model {path.name}, {args.threads} thread(s), old = {args.base}, paper "
              f"{args.paper.name}")  # fmt: skip
        seconds = {(w, p): 0.0 for w in loads for p in paths}
        worst = dict.fromkeys(loads, 0.0)
        for repeat in range(args.repeats):
            order = ["old", "new"] if repeat % 2 == 0 else ["new", "old"]
            for name, pairs in loads.items():
                scores = {}
                for which in order:
                    backend.chat([Message("user", "Hi")], GenerationOptions(max_tokens=1))
                    started = time.perf_counter()
                    scores[which] = paths[which](pairs)
                    took = time.perf_counter() - started
                    seconds[name, which] += took
                    print(f"  repeat {repeat + 1} {name} {which}: {took:.1f} s", flush=True)
                diff = max(abs(a - b) for a, b in zip(scores["old"], scores["new"], strict=True))
                worst[name] = max(worst[name], diff)
        for name in loads:
            old, new = seconds[name, "old"], seconds[name, "new"]
            print(f"  {name:<24} old {old:7.1f} s  new {new:7.1f} s  new/old {new / old:.2f}  "
                  f"max |score difference| {worst[name]:.4f}")  # fmt: skip
        old = sum(s for (_, p), s in seconds.items() if p == "old")
        new = sum(s for (_, p), s in seconds.items() if p == "new")
        print(f"  {'all':<24} old {old:7.1f} s  new {new:7.1f} s  new/old {new / old:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
