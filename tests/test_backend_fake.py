"""The fake backend: queued answers, recorded calls, and llama-like limits and statistics."""

from __future__ import annotations

import pytest

from localdigest.backend import GenerationOptions, Message
from localdigest.backends.fake import FakeBackend
from localdigest.errors import ModelError

PAPER = "We propose a method for reading papers. " * 50


def ask(task: str) -> list[Message]:
    return [Message("system", "You write Japanese."), Message("user", f"{PAPER}\n{task}")]


def test_returns_queued_answers_in_order_and_records_calls() -> None:
    backend = FakeBackend(["一つ目", "second"])
    options = GenerationOptions(max_tokens=50)
    first = backend.chat(ask("Task A"), options)
    second = backend.chat(ask("Task B"), options)
    assert [first.text, second.text] == ["一つ目", "second"]
    assert [call.messages[-1].content[-6:] for call in backend.calls] == ["Task A", "Task B"]
    assert backend.calls[0].options is options
    assert backend.calls[0].prompt.endswith("<|assistant|>\n")


def test_callable_answers_see_the_messages() -> None:
    backend = FakeBackend(lambda messages, options: messages[-1].content.split()[-1].upper())
    assert backend.chat(ask("Task done"), GenerationOptions()).text == "DONE"


def test_running_out_of_answers_is_a_test_bug() -> None:
    backend = FakeBackend(["only"])
    backend.chat(ask("one"), GenerationOptions())
    with pytest.raises(LookupError, match="no queued answer"):
        backend.chat(ask("two"), GenerationOptions())


def test_count_tokens_is_deterministic() -> None:
    backend = FakeBackend()
    assert backend.count_tokens("hello world, 本研究") == 6  # hello, world, ",", 本, 研, 究
    assert backend.count_tokens("") == 0


def test_shared_prefix_is_evaluated_once() -> None:
    backend = FakeBackend(["a", "b"])
    first = backend.chat(ask("Translate the abstract."), GenerationOptions())
    second = backend.chat(ask("Summarise in one sentence."), GenerationOptions())
    assert first.stats.evaluated_tokens == first.stats.prompt_tokens
    assert second.stats.evaluated_tokens < second.stats.prompt_tokens // 20
    assert second.stats.evaluated_tokens > 0
    assert second.stats.prompt_seconds < first.stats.prompt_seconds


def test_max_tokens_and_stop_strings() -> None:
    backend = FakeBackend(["one two three four", "Q1: a\nQ2: b"])
    cut = backend.chat(ask("x"), GenerationOptions(max_tokens=2))
    assert (cut.text, cut.finish_reason, cut.stats.generated_tokens) == ("one two", "length", 2)
    stopped = backend.chat(ask("y"), GenerationOptions(stop=["\nQ2:"]))
    assert (stopped.text, stopped.finish_reason) == ("Q1: a", "stop")


def test_context_too_small_is_refused_before_answering() -> None:
    backend = FakeBackend(["unused"], n_ctx=300)
    with pytest.raises(ModelError, match="context too small"):
        backend.chat(ask("x"), GenerationOptions(max_tokens=100))
    assert backend.calls == []


def test_chat_many_answers_each_prompt() -> None:
    backend = FakeBackend(["1", "2", "3"])
    results = backend.chat_many([ask(f"task {i}") for i in range(3)], GenerationOptions())
    assert [r.text for r in results] == ["1", "2", "3"]
    assert all(r.stats.evaluated_tokens < r.stats.prompt_tokens for r in results[1:])
