"""Backends behind `localdigest.backend.Backend`: llama.cpp for real runs, a fake for tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from localdigest import models

if TYPE_CHECKING:
    from localdigest.backend import Backend
    from localdigest.config import Settings


def load_backend(
    settings: Settings, n_ctx_hint: int | None = None, *, verbose: bool = False, choice: str = ""
) -> Backend:
    """Load the model `settings.model` names (registry name or path to a GGUF).

    Args:
        settings: model, models_dir, ctx, threads, gpu_layers, seed and parallel are used.
        n_ctx_hint: tokens one of the caller's prompts needs (prompt plus generation) when
            `settings.ctx` is 0; room for parallel sequences is added, and the total capped at
            the model's trained context length.
        verbose: pass llama.cpp's own logs through to stderr (for -vv).
        choice: how `--model auto` chose `settings.model` when it did, for the provenance.

    Raises:
        UsageError: unknown model name. ModelError: the file is missing, invalid or unsupported.
    """
    from localdigest.backends.llama import AUTO_PARALLEL, PARALLEL_ROOM, LlamaBackend

    if n_ctx_hint:  # answers decoded in parallel each need room beside the shared paper
        n_ctx_hint += PARALLEL_ROOM * ((settings.parallel or AUTO_PARALLEL) - 1)
    resolved = models.resolve(settings.model, models.models_dir(settings.models_dir))
    return LlamaBackend(
        resolved.path,
        name=resolved.name,
        entry=resolved.entry,
        n_ctx=settings.ctx,
        n_ctx_hint=n_ctx_hint,
        n_threads=settings.threads,
        n_gpu_layers=settings.gpu_layers,
        seed=settings.seed,
        parallel=settings.parallel,
        verbose=verbose,
        choice=choice or resolved.choice,
    )
