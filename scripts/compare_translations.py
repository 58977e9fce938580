"""Compare translation prompt sets on abstract sentences of papers, one model load for all.

For each prompt directory (a copy of templates/prompts with one change), every abstract sentence
of the given papers is translated with the sentence translator of the pipeline (first attempt
only, no retries, so the prompt alone is measured) and checked. Prints, per prompt set, how many
translations the checks flag and for what, and writes a TSV (sentence, then one column per
prompt set) to read side by side. The checks find defects, not truth: read the TSV too, and keep
the papers you judge with out of this comparison.

Example:
    .venv/bin/python scripts/compare_translations.py --prompts templates/prompts /tmp/variant \\
        --papers ../shared/corpus/papers/1412.6980v9_adam.pdf --out /tmp/compare.tsv
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from localdigest import extract  # noqa: E402
from localdigest.backends import load_backend  # noqa: E402
from localdigest.config import load_settings  # noqa: E402
from localdigest.generate.select import split_sentences  # noqa: E402
from localdigest.generate.tasks import StageLog, TaskRunner  # noqa: E402
from localdigest.generate.translate import Translator  # noqa: E402
from localdigest.prompts import PromptSet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", nargs="+", required=True, help="prompt directories")
    parser.add_argument("--papers", nargs="+", required=True, help="PDFs whose abstracts to use")
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", type=Path, help="TSV of all translations side by side")
    args = parser.parse_args()

    sentences = []
    for pdf in args.papers:
        abstract = extract.paper(pdf).metadata.abstract or ""
        sentences += split_sentences(abstract)
    settings = load_settings().with_flags(model=args.model, threads=args.threads, retries=0)
    backend = load_backend(settings, n_ctx_hint=1536)
    columns = []
    for directory in args.prompts:
        runner = TaskRunner(backend, settings, StageLog())
        pairs = Translator(PromptSet(Path(directory)), runner).translate(sentences, "compare")
        flagged = collections.Counter(w.kind for p in pairs for w in p.warnings)
        print(
            f"{directory}: {sum(bool(p.warnings) for p in pairs)}/{len(pairs)} flagged; "
            + ", ".join(f"{kind} {n}" for kind, n in flagged.most_common())
        )
        columns.append(
            [
                p.shown + (f"  [{'; '.join(map(str, p.warnings))}]" if p.warnings else "")
                for p in pairs
            ]
        )
    if args.out:
        rows = ["\t".join(["source", *args.prompts])]
        rows += ["\t".join(row) for row in zip(sentences, *columns, strict=True)]
        args.out.write_text("\n".join(rows) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
