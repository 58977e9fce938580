"""Q&A stage throughput with answers decoded as parallel sequences vs one after another.

The Q&A stage of the real pipeline (PaperDigester's Q&A step: same prompts, validation and
retries) runs on one paper for each width in --widths, on one loaded model whose context holds
the largest width, after the paper prefix is cached. Throughput = generated tokens / stage wall
time, retries included. This decides the `parallel` auto default (LlamaBackend.AUTO_PARALLEL).
The stage's outputs differ between widths (batched kernels round differently), so its numbers
carry that noise; the raw batched decode rate at the same depth is printed too: the ceiling.

Example:
    .venv/bin/python benchmarks/parallel_answers.py --widths 1 2 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localdigest import extract  # noqa: E402
from localdigest.backend import GenerationOptions  # noqa: E402
from localdigest.backends import load_backend  # noqa: E402
from localdigest.backends.llama import LlamaBackend  # noqa: E402
from localdigest.config import load_settings  # noqa: E402
from localdigest.generate import PaperDigester, StageLog  # noqa: E402

DEFAULT_PAPER = REPO.parent / "shared" / "corpus" / "papers"


def raw_batched_rate(backend: LlamaBackend, depth: int, width: int, steps: int = 40) -> float:
    """Generated tokens/s of `width` sequences decoding together after a `depth`-token prefix
    (one token each per decode call), without sampling or the pipeline around it."""
    import llama_cpp

    from localdigest.backends.parallel import _Batch

    llm = backend._llm
    memory = llama_cpp.llama_get_memory(llm._ctx.ctx)
    prefix = backend.tokenize("Audio classification with convolutional networks. " * depth)[:depth]
    if backend._pool is not None:
        backend._pool.keep_only(memory, None)
    llm.reset()
    llm.eval(prefix)  # into sequence 0
    batch = _Batch(llm.n_batch)
    try:
        for seq in range(1, width + 1):
            llama_cpp.llama_memory_seq_cp(memory, 0, seq, 0, depth)
        started = time.perf_counter()
        for step in range(steps):
            for seq in range(1, width + 1):
                batch.add(prefix[step], depth + step, seq, True)
            batch.decode(llm._ctx.ctx)
        elapsed = time.perf_counter() - started
    finally:
        for seq in range(1, width + 1):
            llama_cpp.llama_memory_seq_rm(memory, seq, -1, -1)
        batch.free()
    return width * steps / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper", type=Path, help="PDF (default: corpus 1609.09430v2)")
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--retries", type=int, default=0, help="retries of failed pairs")
    parser.add_argument("--paper-tokens", type=int, default=3000)
    parser.add_argument("--model", help="registry name or GGUF path (default: settings)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    pdf = args.paper or next(DEFAULT_PAPER.glob("1609.09430v2*.pdf"))
    settings = load_settings().with_flags(
        model=args.model,
        paper_tokens=args.paper_tokens,
        parallel=max(args.widths),
        questions=args.questions,
        retries=args.retries,
    )
    digester = PaperDigester(settings)
    backend = load_backend(settings, n_ctx_hint=digester.context_size())
    assert isinstance(backend, LlamaBackend)
    digester = PaperDigester(settings, backend=backend)
    paper = extract.paper(pdf)
    prepared = digester.prepare(paper)
    warm = digester.messages(prepared.prefix, "OK")
    backend.chat(warm, GenerationOptions(max_tokens=1))  # the paper is cached before timing

    results: list[dict[str, Any]] = []
    for width in args.widths:
        backend._parallel = width  # the context holds max(widths) sequences
        backend.chat(warm, GenerationOptions(max_tokens=1))  # no prompt parked by the last width
        log = StageLog()
        started = time.perf_counter()
        qa = digester.answer_questions(prepared, log, [])
        wall = time.perf_counter() - started
        stats = log.stages["qa"]
        results.append(
            {
                "width": width,
                "wall_seconds": wall,
                "generated_tokens": stats.generated_tokens,
                "evaluated_tokens": stats.evaluated_tokens,
                "tokens_per_second": stats.generated_tokens / wall,
                "prompt_seconds": stats.prompt_seconds,
                "generation_seconds": stats.generation_seconds,
                "generation_tokens_per_second": stats.generated_tokens / stats.generation_seconds,
                "retried": log.retries.get("qa", 0),
                "pairs": len(qa),
                "pairs_with_problems": sum(1 for q in qa if q.warnings),
            }
        )
        print(f"width {width}: {results[-1]}", file=sys.stderr, flush=True)
    depth = len(backend.prompt_tokens(warm))
    raw = {width: raw_batched_rate(backend, depth, width) for width in args.widths}
    backend.close()

    base = results[0]["tokens_per_second"]
    base_gen = results[0]["generation_tokens_per_second"]
    print(f"paper {pdf.name}: {prepared.plan.tokens} paper tokens, {args.questions} questions")
    print(f"{'width':>5} {'wall_s':>8} {'generated':>10} {'evaluated':>10} {'tok/s':>7} "
          f"{'speedup':>8} {'prompt_s':>9} {'gen_s':>7} {'gen_tok/s':>9} {'gen_speedup':>11} "
          f"{'retried':>8} {'pairs':>6} {'problems':>9}")  # fmt: skip
    for r in results:
        print(f"{r['width']:>5} {r['wall_seconds']:8.1f} {r['generated_tokens']:>10} "
              f"{r['evaluated_tokens']:>10} {r['tokens_per_second']:7.1f} "
              f"{r['tokens_per_second'] / base:7.2f}x {r['prompt_seconds']:9.1f} "
              f"{r['generation_seconds']:7.1f} {r['generation_tokens_per_second']:9.1f} "
              f"{r['generation_tokens_per_second'] / base_gen:10.2f}x "
              f"{r['retried']:>8} {r['pairs']:>6} "
              f"{r['pairs_with_problems']:>9}")  # fmt: skip
    print(f"raw batched decode at depth {depth} (ceiling): " + ", ".join(
        f"width {w} {rate:.1f} tokens/s ({rate / raw[args.widths[0]]:.2f}x)" for w, rate in raw.items()
    ))  # fmt: skip
    if args.json:
        report = {"stage": results, "raw_batched_tokens_per_second": raw}
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
