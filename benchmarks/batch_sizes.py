"""Prompt-processing speed of the model for several n_batch/n_ubatch sizes (llama-bench style).

A paper prefix of --tokens random token ids is evaluated from an empty context once per size,
after a warm-up; the rate is tokens / seconds. Decides LlamaBackend's n_batch default.

Example:
    .venv/bin/python benchmarks/batch_sizes.py --sizes 128 256 512 1024
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localdigest import models  # noqa: E402
from localdigest.backends.llama import physical_cores  # noqa: E402
from localdigest.config import load_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--model", help="registry name or GGUF path (default: settings)")
    args = parser.parse_args(argv)

    import llama_cpp
    import numpy as np

    settings = load_settings().with_flags(model=args.model)
    path = models.resolve(settings.model, models.models_dir(settings.models_dir)).path
    threads = settings.threads or physical_cores()
    tokens = [int(t) for t in np.random.default_rng(0).integers(0, 32000, args.tokens)]
    print(f"model {path.name}: pp{args.tokens} from an empty context, {threads} threads")
    for size in args.sizes:
        llm = llama_cpp.Llama(
            str(path),
            n_ctx=args.tokens + 64,
            n_batch=size,
            n_ubatch=size,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        llm.eval(tokens[:32])  # warm-up: first decodes allocate buffers
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        seconds = time.perf_counter() - started
        print(f"  n_batch = n_ubatch = {size:>5}: {args.tokens / seconds:6.1f} tokens/s")
        llm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
