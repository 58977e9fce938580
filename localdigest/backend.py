"""The one seam between the pipeline and a language model.

The llama.cpp backend (localdigest.backends.llama) and the fake (localdigest.backends.fake)
implement `Backend`; the pipeline only ever sees this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass
class CallStats:
    """What one generation cost. evaluated_tokens < prompt_tokens proves prefix (KV cache) reuse."""

    prompt_tokens: int = 0
    evaluated_tokens: int = 0
    generated_tokens: int = 0
    prompt_seconds: float = 0.0
    generation_seconds: float = 0.0

    def add(self, other: CallStats) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.evaluated_tokens += other.evaluated_tokens
        self.generated_tokens += other.generated_tokens
        self.prompt_seconds += other.prompt_seconds
        self.generation_seconds += other.generation_seconds


@dataclass
class Completion:
    text: str
    stats: CallStats
    finish_reason: str = "stop"  # "stop" | "length"
    # mean log-probability of the generated tokens, where the backend read it while generating
    log_probability: float | None = None


@dataclass
class GenerationOptions:
    max_tokens: int = 1024
    temperature: float = 0.0
    seed: int | None = 42
    # Small models loop ("...音声分類のための AlexNet ..." over and over) without a mild penalty.
    repeat_penalty: float = 1.1
    stop: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelInfo:
    """Identity and limits of the loaded model, recorded as provenance on every record."""

    name: str
    path: str
    sha256: str | None
    architecture: str
    n_ctx_train: int
    n_ctx: int
    params: dict[str, Any] = field(default_factory=dict)  # threads, gpu_layers, n_batch, ...


@runtime_checkable
class Backend(Protocol):
    """A chat model. Calls sharing a message prefix should reuse its evaluated state."""

    @property
    def info(self) -> ModelInfo: ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` with the model's own tokenizer."""
        ...

    def chat(self, messages: list[Message], options: GenerationOptions) -> Completion:
        """Format `messages` with the model's chat template and generate a reply."""
        ...

    def chat_many(
        self, prompts: list[list[Message]], options: GenerationOptions
    ) -> list[Completion]:
        """Several independent chats; a backend may decode them in parallel sharing a prefix."""
        ...

    def score(self, pairs: list[tuple[list[Message], str]]) -> list[float]:
        """Mean log-probability per token of each given reply to its chat, by forced decoding
        (nothing is generated): how probable the model finds that reply."""
        ...

    def forget(self) -> None:
        """Drop every cached evaluation: the next call starts as on a freshly loaded model, so
        what a paper gets does not depend on the paper before it (reused cells were computed
        in other batches, and greedy decoding follows such last-bit differences)."""
        ...


def common_prefix_length(cached: Sequence[T], tokens: Sequence[T]) -> int:
    """How many leading tokens two sequences share: the part of a KV cache a prompt can reuse."""
    n = 0
    for a, b in zip(cached, tokens):  # noqa: B905 - lengths differ by design
        if a != b:
            break
        n += 1
    return n
