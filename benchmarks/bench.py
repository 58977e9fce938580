"""Benchmark the digest pipeline against the model's raw speed on this machine (`make bench`).

Prints:
- raw rates of the loaded model the way llama.cpp's llama-bench reports them: prompt processing
  (pp) tokens/s at 512 tokens and at a paper-sized context, generation (tg) tokens/s on an empty
  context and at that depth;
- per paper: seconds per stage, tokens evaluated and generated (by stage, first attempts and
  retries), peak memory, and Efficiency = raw model seconds / wall time (target >= 0.9: the
  pipeline adds under 10% around the model), and prefix reuse = evaluated prompt tokens / the
  paper's prompt tokens (target <= 1.2 for a 10-question digest). Raw model seconds are the
  evaluated tokens at the raw prompt rate plus the generated tokens at the raw single-sequence
  generation rate, each at the context depth where the call ran: a decode's cost per token
  grows linearly with the tokens already in the context, so the two depths measured per kind
  give the rate at any depth (CostModel). With --parallel above 1 answers are decoded together,
  which beats the single-sequence rate, so efficiency can exceed 1;
- against a baseline (`--baseline REF`, default in `make bench`: the last commit of the previous
  pipeline): the same papers digested by the localdigest of git REF, in a subprocess, right after
  ours, with the same model, threads and questions; per paper the digest seconds of each (the
  records' own timing: extraction plus generation, no model load) and their ratio.

`--tiny` runs the same harness on a generated random-weight model in seconds (for the test).

Example:
    .venv/bin/python benchmarks/bench.py --papers ../shared/corpus/papers/1609.09430v2_*.pdf \
        --baseline 4cc6c65
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from localdigest import api  # noqa: E402
from localdigest.backend import CallStats, Completion, GenerationOptions, Message  # noqa: E402
from localdigest.backends import load_backend  # noqa: E402
from localdigest.backends.llama import LlamaBackend  # noqa: E402
from localdigest.config import Settings  # noqa: E402
from localdigest.generate.digester import PaperDigester  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "papers"
DEFAULT_PAPERS = ["1609.09430v2", "1912.07559v2", "2304.14933v1"]  # 5, 6 and 9 pages
TINY_PAPERS = [REPO / "examples" / "localdigest-design.pdf"]
TG = 64  # generated tokens per tg measurement


# ------------------------------------------------------------------ raw rates (llama-bench style)


def raw_rates(backend: LlamaBackend, depth: int, tg_tokens: int, seed: int = 0) -> dict[str, float]:
    """pp512, pp<depth>, tg<n> on an empty context and tg at <depth>: decode only, no sampling.

    Random token ids, as llama-bench uses: the cost of a decode does not depend on which tokens.
    """
    import numpy as np

    llm = backend._llm  # the benchmark measures the loaded llama.cpp context itself
    rng = np.random.default_rng(seed)
    vocab = llm.n_vocab()

    def tokens(n: int) -> list[int]:
        return [int(t) for t in rng.integers(0, vocab, n)]

    def prompt_rate(n: int) -> float:
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens(n))
        return n / (time.perf_counter() - started)

    def generation_rate(n: int) -> float:
        started = time.perf_counter()
        for token in tokens(n):
            llm.eval([token])
        return n / (time.perf_counter() - started)

    prompt_rate(16)  # warm-up: first decodes allocate buffers
    rates = {"pp512": prompt_rate(512)}
    rates[f"pp{depth}"] = prompt_rate(depth)
    rates[f"tg{tg_tokens}@d{depth}"] = generation_rate(tg_tokens)  # right after pp<depth>
    llm.reset()
    llm.eval(tokens(1))
    rates[f"tg{tg_tokens}"] = generation_rate(tg_tokens)
    llm.reset()
    return rates


@dataclass
class CostModel:
    """Raw model seconds as a function of context depth, fitted to two measurements per kind.

    A decode's cost per token is base + slope * depth (attention reads every cached token).
    Prompt processing from empty to n tokens then takes base*n + slope*n^2/2, generation of one
    token at depth d takes base + slope*d.
    """

    prompt_base: float
    prompt_slope: float
    gen_base: float
    gen_slope: float

    @classmethod
    def from_rates(cls, rates: dict[str, float], depth: int, tg_tokens: int) -> CostModel:
        short, deep = 512 / rates["pp512"], depth / rates[f"pp{depth}"]  # seconds for 0..n
        # short = a*512 + b*512^2/2 and deep = a*depth + b*depth^2/2, solved for a and b
        # Costs cannot fall with depth nor go below zero: noisy rates (a busy machine, the tiny
        # model's sub-millisecond decodes) could otherwise fit a negative slope or base.
        slope = max(0.0, (deep / depth - short / 512) / ((depth - 512) / 2))
        base = max(0.0, short / 512 - slope * 512 / 2)
        mid = tg_tokens / 2  # a tg run's tokens sit at depth..depth+tg_tokens
        gen_empty, gen_deep = 1 / rates[f"tg{tg_tokens}"], 1 / rates[f"tg{tg_tokens}@d{depth}"]
        gen_slope = max(0.0, (gen_deep - gen_empty) / depth)
        return cls(base, slope, max(0.0, gen_empty - gen_slope * mid), gen_slope)

    def prompt_seconds(self, start: int, count: int) -> float:
        end = start + count
        return self.prompt_base * count + self.prompt_slope * (end * end - start * start) / 2

    def generation_seconds(self, start: int, count: int) -> float:
        return self.gen_base * count + self.gen_slope * (start * count + count * count / 2)

    def call_seconds(self, stats: CallStats) -> float:
        """A call evaluated the last `evaluated_tokens` of its prompt, then generated."""
        start = stats.prompt_tokens - stats.evaluated_tokens
        return self.prompt_seconds(start, stats.evaluated_tokens) + self.generation_seconds(
            stats.prompt_tokens, stats.generated_tokens
        )


# ------------------------------------------------------------------ recording what the pipeline asks


@dataclass
class Call:
    stage: str
    messages: list[Message]
    options: GenerationOptions
    stats: CallStats
    retry: bool


@dataclass
class RecordingBackend:
    """Passes calls through to the model and notes each with the stage it belongs to."""

    inner: LlamaBackend
    base_seed: int
    stage: str = "start"
    calls: list[Call] = field(default_factory=list)
    score_seconds: float = 0.0  # forced decoding of translations (translate.Translator._score)

    @property
    def info(self) -> Any:
        return self.inner.info

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def chat(self, messages: list[Message], options: GenerationOptions) -> Completion:
        return self.chat_many([messages], options)[0]

    def chat_many(
        self, prompts: list[list[Message]], options: GenerationOptions
    ) -> list[Completion]:
        completions = (
            self.inner.chat_many(prompts, options)
            if len(prompts) > 1
            else [self.inner.chat(prompts[0], options)]
        )
        retry = options.seed != self.base_seed  # the digester changes the seed on a retry
        for messages, completion in zip(prompts, completions, strict=True):
            self.calls.append(Call(self.stage, messages, options, completion.stats, retry))
        return completions

    def score(self, pairs: list[tuple[list[Message], str]]) -> list[float]:
        started = time.perf_counter()
        scores = self.inner.score(pairs)
        self.score_seconds += time.perf_counter() - started
        return scores

    def forget(self) -> None:
        self.inner.forget()

    def on_stage(self, stage: str, info: dict[str, Any]) -> None:
        self.stage = stage


# ------------------------------------------------------------------ one paper


def bench_paper(
    pdf: Path, settings: Settings, backend: LlamaBackend, cost: CostModel
) -> tuple[dict[str, Any], RecordingBackend]:
    recorder = RecordingBackend(backend, settings.seed)
    started = time.perf_counter()
    record = api.digest_paper(pdf, settings, backend=recorder, on_stage=recorder.on_stage)
    generated_at = time.perf_counter()
    for fmt in ("txt", "md", "html", "json"):
        api.render([record], fmt, settings)
    finished = time.perf_counter()
    wall = finished - started

    calls = recorder.calls
    total = CallStats()
    for call in calls:
        total.add(call.stats)
    generation: dict[str, float] = {}
    for call in calls:
        if not call.retry:
            generation[call.stage] = generation.get(call.stage, 0.0) + call.stats.generation_seconds
    retry_calls = [c for c in calls if c.retry]
    retry_seconds = sum(c.stats.prompt_seconds + c.stats.generation_seconds for c in retry_calls)
    first_attempt_prompt = sum(c.stats.prompt_seconds for c in calls if not c.retry)

    model_seconds = sum(cost.call_seconds(c.stats) for c in calls)
    evaluated: dict[str, int] = {}
    for call in calls:
        key = "retries" if call.retry else call.stage
        evaluated[key] = evaluated.get(key, 0) + call.stats.evaluated_tokens
    result = {
        "paper": pdf.name,
        "pages": _page_count(pdf),
        "calls": len(calls),
        "questions": len(record.qa),
        "evaluated_tokens": total.evaluated_tokens,
        "evaluated_by_stage": evaluated,
        "model_seconds": model_seconds,
        "prompt_tokens": total.prompt_tokens,
        "generated_tokens": total.generated_tokens,
        "seconds": {
            "extract": record.stats.get("extract_seconds", 0.0),
            "prompt_eval": first_attempt_prompt,
            **{f"gen_{stage}": s for stage, s in generation.items()},
            "retries": retry_seconds,
            "score": recorder.score_seconds,
            "render": finished - generated_at,
            "wall": wall,
        },
        "retries": len(retry_calls),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "efficiency": model_seconds / wall,
        "digest_seconds": record.stats["seconds"] + record.stats.get("extract_seconds", 0.0),
        "warnings": len(record.warnings) + sum(len(q.warnings) for q in record.qa),
    }
    return result, recorder


def bench_baseline(ref: str, papers: list[Path], settings: Settings) -> list[dict[str, Any]]:
    """Digest `papers` with the localdigest of git `ref` (its own CLI, in a subprocess)."""
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        model = resolve_model_path(settings)
        for pdf in papers:
            out = Path(scratch) / pdf.stem
            command = [sys.executable, "-c", _baseline_main(),
                       "digest", str(pdf), "-o", str(out), "--model", model, "--format", "json",
                       "--threads", str(settings.threads), "--questions", str(settings.questions),
                       "--progress", "json"]  # fmt: skip
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run(command, env=env, check=False, capture_output=True, timeout=3600)
            found = sorted(out.glob("records/**/*.json"))
            record = json.loads(found[0].read_text(encoding="utf-8")) if found else {}
            if record.get("status") != "ok":
                raise SystemExit(
                    f"the baseline {ref} did not digest {pdf.name}: {record.get('error')}"
                )
            seconds = record["stats"]["seconds"] + record["stats"].get("extract_seconds", 0.0)
            results.append({"paper": pdf.name, "digest_seconds": seconds})
    return results


def _baseline_main() -> str:
    """The baseline's CLI, its model loaded with the weight buffers ours uses: commits before
    the AMX fix crash on such a CPU, and both sides must be measured alike."""
    from localdigest.backends.llama import has_amx, read_cpuinfo

    if not has_amx(read_cpuinfo()):
        return "from localdigest.cli import main; main()"
    from localdigest.backends.llama_internals import model_params_source

    return model_params_source(use_extra_bufts=False) + "from localdigest.cli import main; main()"


def resolve_model_path(settings: Settings) -> str:
    from localdigest import models

    return str(models.resolve(settings.model, models.models_dir(settings.models_dir)).path)


def _page_count(pdf: Path) -> int:
    import pymupdf

    with pymupdf.open(pdf) as doc:
        return int(doc.page_count)


# ------------------------------------------------------------------ output


def print_report(report: dict[str, Any]) -> None:
    model = report["model"]
    print(f"model: {model['name']}  threads {model['threads']}  n_ctx {model['n_ctx']}  "
          f"parallel {model['parallel']}  llama-cpp-python {model['llama_cpp_python']}")  # fmt: skip
    print("\nraw rates (llama-bench style, decode only)")
    for name, rate in report["rates"].items():
        print(f"  {name:<14} {rate:8.1f} tokens/s")

    papers = report["papers"]
    stages = sorted({k for p in papers for k in p["seconds"]} - {"wall"}, key=_stage_order)
    print("\nseconds per stage")
    print(f"  {'paper':<28}" + "".join(f" {s:>13}" for s in stages) + f"{'wall':>9}")
    for p in papers:
        cells = "".join(f" {p['seconds'].get(s, 0.0):13.1f}" for s in stages)
        print(f"  {p['paper'][:28]:<28}{cells}{p['seconds']['wall']:9.1f}")

    print("\ntokens and ratios")
    header = ("paper", "pages", "calls", "retries", "evaluated", "generated", "peak_MB",
              "efficiency")  # fmt: skip
    print(f"  {header[0]:<28}" + "".join(f" {h:>11}" for h in header[1:]))
    for p in papers:
        cells = (p["pages"], p["calls"], p["retries"], p["evaluated_tokens"],
                 p["generated_tokens"], f"{p['peak_rss_mb']:.0f}", f"{p['efficiency']:.2f}")  # fmt: skip
        print(f"  {p['paper'][:28]:<28}" + "".join(f" {c!s:>11}" for c in cells))
    print("  efficiency = raw model seconds (single-sequence rates at each call's depth) / wall")
    print("\nevaluated prompt tokens by stage (first attempts; retries together)")
    for p in papers:
        parts = "  ".join(f"{k} {v}" for k, v in p["evaluated_by_stage"].items())
        print(f"  {p['paper'][:28]:<28} {parts}")

    baseline = report.get("baseline")
    if baseline:
        print(f"\nagainst the baseline {baseline['ref']} (digest seconds: extraction + generation)")
        print(f"  {'paper':<28} {'ours':>8} {'baseline':>9} {'ours/baseline':>14}")
        for ours, theirs in zip(papers, baseline["papers"], strict=True):
            ratio = ours["digest_seconds"] / theirs["digest_seconds"]
            print(f"  {ours['paper'][:28]:<28} {ours['digest_seconds']:8.1f} "
                  f"{theirs['digest_seconds']:9.1f} {ratio:14.2f}")  # fmt: skip
        print(f"  total ours/baseline: {baseline['ratio']:.2f}")


def _stage_order(name: str) -> int:
    order = ["extract", "prompt_eval", "gen_abstract", "gen_summary", "gen_select",
             "gen_qa", "retries", "render"]  # fmt: skip
    return order.index(name) if name in order else len(order)


# ------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="generated tiny model (seconds)")
    parser.add_argument("--papers", nargs="+", type=Path, help="PDFs (default: 3 corpus papers)")
    parser.add_argument("--questions", type=int, help="Q&A pairs per paper (default 10; tiny 3)")
    parser.add_argument("--parallel", type=int, help="answers decoded together (0: auto)")
    parser.add_argument("--model", help="registry name or GGUF path (default: settings)")
    parser.add_argument("--baseline", metavar="REF",
                        help="also digest the papers with the localdigest of this git ref")  # fmt: skip
    parser.add_argument("--depth", type=int, default=4096, help="paper-sized context for rates")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags: dict[str, Any] = {"questions": args.questions, "parallel": args.parallel}
    with tempfile.TemporaryDirectory() as scratch:
        if args.tiny:
            sys.path.insert(0, str(REPO / "tests"))
            from tinymodel import build_tiny_model

            model = build_tiny_model(Path(scratch) / "tiny.gguf")
            # one thread: tiny decodes are microseconds, and spinning thread barriers stall badly
            # whenever another process holds a core
            flags |= {"model": str(model), "ctx": 4096, "max_tokens": 48}
            flags["threads"] = 1
            flags["questions"] = args.questions or 3
            papers = args.papers or TINY_PAPERS
            depth = 1024
        else:
            flags["model"] = args.model
            papers = args.papers or [next(CORPUS.glob(f"{p}*.pdf")) for p in DEFAULT_PAPERS]
            depth = args.depth
        settings = api.settings(**flags)
        n_ctx = PaperDigester(settings).context_size()
        backend = load_backend(settings, n_ctx_hint=n_ctx)
        assert isinstance(backend, LlamaBackend)
        depth = min(depth, backend.info.n_ctx - TG - 1)
        rates = raw_rates(backend, depth, TG)
        cost = CostModel.from_rates(rates, depth, TG)
        params = backend.info.params
        report: dict[str, Any] = {
            "model": {"name": backend.info.name, "n_ctx": backend.info.n_ctx, **params},
            "settings": {"questions": settings.questions},
            "rates": rates,
            "papers": [],
        }
        for pdf in papers:
            result, _ = bench_paper(pdf, settings, backend, cost)
            report["papers"].append(result)
            print(f"done {pdf.name}: {result['seconds']['wall']:.1f} s", file=sys.stderr)
        backend.close()
        if args.baseline:
            theirs = bench_baseline(
                args.baseline, papers, settings.with_flags(threads=params["threads"])
            )
            total = sum(p["digest_seconds"] for p in report["papers"])
            report["baseline"] = {
                "ref": args.baseline,
                "papers": theirs,
                "ratio": total / sum(p["digest_seconds"] for p in theirs),
            }
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
