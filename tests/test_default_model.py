"""The real default model, what the demo uses: the checkout's, else fetched once per machine
(conftest.real_model). Short prompts and few tokens, so the whole module takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localdigest import models
from localdigest.backend import GenerationOptions, Message
from localdigest.backends import load_backend
from localdigest.backends.llama import LlamaBackend
from localdigest.config import Settings

DEFAULT = models.load_registry()["default"]

pytestmark = pytest.mark.slow

PAPER = (
    "Title: Sparse Attention for Long Documents\n"
    "Abstract: We propose a sparse attention method that reduces the memory of transformers "
    "on long documents by 60% while keeping accuracy within 0.5 points on three benchmarks.\n"
    "1 Introduction\nTransformers are expensive on long inputs. Our method selects 64 tokens "
    "per query using a learned router.\n"
)


def ask(task: str) -> list[Message]:
    return [
        Message("system", "You are a careful assistant who answers in Japanese."),
        Message("user", f"{PAPER}\n{task}"),
    ]


@pytest.fixture(scope="module")
def default_model(default_model_path: Path) -> Iterator[LlamaBackend]:
    settings = Settings(model="default", models_dir=str(default_model_path.parent), parallel=1)
    backend = load_backend(settings, n_ctx_hint=1024)  # no room added for sequences
    assert isinstance(backend, LlamaBackend)
    with backend:
        yield backend


def test_default_model_loads_verified(default_model: LlamaBackend) -> None:
    info = default_model.info
    assert (info.name, info.architecture, info.sha256) == ("default", "qwen2", DEFAULT.sha256)
    assert (info.n_ctx, info.n_ctx_train) == (1024, 32768)
    assert "<|im_start|>assistant\n" in default_model.format_prompt(ask("x"))
    assert default_model.count_tokens("本研究では新しい手法を提案する。") < 15


def test_default_model_answers_and_reuses_the_paper_prefix(default_model: LlamaBackend) -> None:
    options = GenerationOptions(max_tokens=12, temperature=0.0)
    first = default_model.chat(ask("この論文の手法を一文で説明してください。"), options)
    second = default_model.chat(ask("メモリはどれだけ減りますか。"), options)
    assert first.text.strip()
    assert 0 < first.stats.generated_tokens <= 12
    assert second.stats.evaluated_tokens < second.stats.prompt_tokens // 4
