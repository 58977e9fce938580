"""A deterministic stand-in for a model, for pipeline tests: queued answers, recorded calls.

It behaves like the llama.cpp backend on the interface: it counts tokens (with a simple
tokenizer), refuses prompts that do not fit its context, honours max_tokens and stop strings,
and simulates prefix reuse, so tests can check that consecutive calls share the paper prefix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from localdigest.backend import (
    CallStats,
    Completion,
    GenerationOptions,
    Message,
    ModelInfo,
    common_prefix_length,
)
from localdigest.errors import ModelError

Responder = Callable[[list[Message], GenerationOptions], str]
Scorer = Callable[[list[Message], str], float]

# ASCII words and numbers are one token; every other visible character (kana, kanji,
# punctuation) is one token. Crude, but deterministic and in the right range for Japanese.
_TOKEN = re.compile(r"[A-Za-z0-9]+|\S")


@dataclass(frozen=True)
class FakeCall:
    messages: list[Message]
    options: GenerationOptions
    prompt: str


class FakeBackend:
    """Implements `localdigest.backend.Backend` without a model."""

    def __init__(
        self,
        answers: Sequence[str] | Responder = (),
        *,
        n_ctx: int = 32768,
        name: str = "fake",
        prompt_rate: float = 80.0,
        generation_rate: float = 20.0,
        scorer: Scorer | None = None,
    ) -> None:
        """Args:
        answers: replies returned in order, or a function of (messages, options) giving one.
        n_ctx: context size; prompts plus max_tokens beyond it raise ModelError like llama.cpp.
        prompt_rate, generation_rate: simulated tokens/s for the seconds in CallStats
            (nothing sleeps); the defaults are the default model's rates on a 2-core CPU.
        scorer: the score of a reply to a chat; by default `overlap_score`.
        """
        self._answers: list[str] = [] if callable(answers) else list(answers)
        self._responder: Responder | None = answers if callable(answers) else None
        self._n_ctx = n_ctx
        self._name = name
        self._prompt_rate = prompt_rate
        self._generation_rate = generation_rate
        self._scorer = scorer or overlap_score
        self._cache: list[str] = []  # tokens "in the KV cache" after the last call
        self.calls: list[FakeCall] = []

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self._name,
            path="",
            sha256=None,
            architecture="fake",
            n_ctx_train=self._n_ctx,
            n_ctx=self._n_ctx,
            params={"prompt_rate": self._prompt_rate, "generation_rate": self._generation_rate},
        )

    @staticmethod
    def tokenize(text: str) -> list[str]:
        return _TOKEN.findall(text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    @staticmethod
    def format_prompt(messages: list[Message]) -> str:
        """A fixed, visible chat format (the fake has no chat template)."""
        turns = "".join(f"<|{m.role}|>\n{m.content}\n" for m in messages)
        return turns + "<|assistant|>\n"

    def chat(self, messages: list[Message], options: GenerationOptions) -> Completion:
        prompt = self.format_prompt(messages)
        tokens = self.tokenize(prompt)
        if len(tokens) + options.max_tokens > self._n_ctx:
            raise ModelError(
                f"context too small: the prompt has {len(tokens)} tokens and up to "
                f"{options.max_tokens} may be generated, but the context holds {self._n_ctx}"
            )
        self.calls.append(FakeCall(list(messages), options, prompt))
        reply = self._next_answer(messages, options)
        text, finish_reason = self._limit(reply, options)
        # the last prompt token is always evaluated again, as in llama.cpp
        reused = min(common_prefix_length(self._cache, tokens), len(tokens) - 1)
        generated = self.count_tokens(text)
        self._cache = tokens + self.tokenize(text)
        stats = CallStats(
            prompt_tokens=len(tokens),
            evaluated_tokens=len(tokens) - reused,
            generated_tokens=generated,
            prompt_seconds=(len(tokens) - reused) / self._prompt_rate,
            generation_seconds=generated / self._generation_rate,
        )
        return Completion(text, stats, finish_reason)

    def chat_many(
        self, prompts: list[list[Message]], options: GenerationOptions
    ) -> list[Completion]:
        return [self.chat(messages, options) for messages in prompts]

    def score(self, pairs: list[tuple[list[Message], str]]) -> list[float]:
        for messages, reply in pairs:
            tokens = self.tokenize(self.format_prompt(messages) + reply)
            if len(tokens) > self._n_ctx:
                raise ModelError(
                    f"context too small: the prompt and reply have {len(tokens)} tokens, "
                    f"but the context holds {self._n_ctx}"
                )
        return [self._scorer(messages, reply) for messages, reply in pairs]

    def forget(self) -> None:
        self._cache = []

    def _next_answer(self, messages: list[Message], options: GenerationOptions) -> str:
        if self._responder is not None:
            return self._responder(messages, options)
        if not self._answers:
            raise LookupError(f"FakeBackend has no queued answer for call {len(self.calls)}")
        return self._answers.pop(0)

    def _limit(self, text: str, options: GenerationOptions) -> tuple[str, str]:
        """Apply stop strings and max_tokens the way the real backend does."""
        for stop in options.stop:
            if stop and stop in text:
                text = text[: text.index(stop)]
        spans = [m.end() for m in _TOKEN.finditer(text)]
        if len(spans) > options.max_tokens:
            return text[: spans[options.max_tokens - 1]] if options.max_tokens else "", "length"
        return text, "stop"


def overlap_score(messages: list[Message], reply: str) -> float:
    """A deterministic stand-in for a model's mean log-probability: minus a tenth of the share
    of the reply's tokens that the chat does not hold (in [-0.1, 0], above any threshold a
    real model's scores call for; tests of thresholds give their own scorer)."""
    seen = set(FakeBackend.tokenize(" ".join(m.content for m in messages)))
    tokens = FakeBackend.tokenize(reply)
    return -0.1 * sum(t not in seen for t in tokens) / len(tokens) if tokens else 0.0
