"""Generation speed with a JSON-schema grammar vs the parsed line format (`Q: / A:`).

The same Q&A task on the same cached paper prefix is generated --runs times each way (same
seeds, same token limit); each way's generation rate is generated tokens / generation seconds.
This is why the pipeline asks for the line format and validates it instead of constraining
decoding with a grammar (see the runtime notes in README.md).

Example:
    .venv/bin/python benchmarks/grammar.py --runs 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localdigest import extract  # noqa: E402
from localdigest.backend import CallStats, GenerationOptions  # noqa: E402
from localdigest.backends import load_backend  # noqa: E402
from localdigest.backends.llama import LlamaBackend  # noqa: E402
from localdigest.config import load_settings  # noqa: E402
from localdigest.generate import PaperDigester  # noqa: E402

DEFAULT_PAPER = REPO.parent / "shared" / "corpus" / "papers"
QA_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}
JSON_FORMAT = '\n出力は JSON で {"question": "（質問）", "answer": "（答え）"} の形にする。'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper", type=Path, help="PDF (default: corpus 1609.09430v2)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--paper-tokens", type=int, default=1500)
    parser.add_argument("--model", help="registry name or GGUF path (default: settings)")
    args = parser.parse_args(argv)

    pdf = args.paper or next(DEFAULT_PAPER.glob("1609.09430v2*.pdf"))
    settings = load_settings().with_flags(model=args.model, paper_tokens=args.paper_tokens)
    digester = PaperDigester(settings)
    backend = load_backend(settings, n_ctx_hint=digester.context_size())
    assert isinstance(backend, LlamaBackend)
    digester = PaperDigester(settings, backend=backend)
    paper = extract.paper(pdf)
    prepared = digester.prepare(paper)
    plan, prefix = prepared.plan, prepared.prefix
    task = digester.qa_task(prepared.questions[5])  # main results: answers with numbers
    ways = {
        "line format": (task, None),
        "json grammar": (task + JSON_FORMAT, QA_SCHEMA),
    }
    backend.chat(digester.messages(prefix, task), GenerationOptions(max_tokens=1))  # cache
    totals = {name: CallStats() for name in ways}
    for run in range(args.runs):
        for name, (prompt, schema) in ways.items():
            options = GenerationOptions(
                max_tokens=args.max_tokens, temperature=0.7, seed=run, json_schema=schema
            )
            completion = backend.chat(digester.messages(prefix, prompt), options)
            totals[name].add(completion.stats)
            print(f"run {run} {name}: {completion.text[:80]!r}", file=sys.stderr)
    backend.close()

    print(f"paper {pdf.name}: {plan.tokens} paper tokens, {args.runs} runs each")
    base = None
    for name, stats in totals.items():
        rate = stats.generated_tokens / stats.generation_seconds
        base = base or rate
        print(f"  {name:<13} {stats.generated_tokens:>5} tokens {stats.generation_seconds:7.1f} s "
              f"{rate:6.1f} tokens/s  {rate / base:5.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
