"""Parallel answer decoding on the tiny GGUF: sequences sharing the paper prefix in one batch.

The reference is the sequential path (`chat` one prompt after another): with the same seed the
parallel sequences must produce the same tokens, evaluate the shared prefix once, and leave the
cache as a sequential call would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localdigest.backend import GenerationOptions, Message, common_prefix_length
from localdigest.backends.llama import LlamaBackend
from localdigest.backends.parallel import shared_prefix_length
from localdigest.backends.scoring import score_tokens

PAPER = "Abstract: we propose a method for reading research papers offline. " * 20
TASKS = [
    "Q1: 何を提案しているか。",
    "Q2: What data is used?",
    "Q3: 精度はどれだけ向上したか。",
    "Q4: Which benchmarks?",
    "Q5: 限界は何か。",
]


def prompts(tasks: list[str] = TASKS) -> list[list[Message]]:
    return [
        [Message("system", "日本語で答えよ。"), Message("user", f"{PAPER}\n\n{t}")] for t in tasks
    ]


@pytest.fixture(scope="module")
def sequential(tiny_model_path: Path) -> Iterator[LlamaBackend]:
    with LlamaBackend(tiny_model_path, n_ctx=2048, n_threads=1, parallel=1) as backend:
        yield backend


@pytest.fixture(scope="module")
def parallel(tiny_model_path: Path) -> Iterator[LlamaBackend]:
    with LlamaBackend(tiny_model_path, n_ctx=2048, n_threads=1, parallel=3) as backend:
        yield backend


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_parallel_output_equals_sequential_output(
    sequential: LlamaBackend, parallel: LlamaBackend, temperature: float
) -> None:
    # Same sampler chain and seed per sequence: greedy and sampled outputs both match token for
    # token (the tiny model's f32 kernels give the same logits batched or not). One difference:
    # llama-cpp-python's create_completion skips its max_tokens check while the text ends in an
    # incomplete UTF-8 character, so a sequential output can run a token or two past max_tokens;
    # the parallel one stops at max_tokens, so its text is a prefix of the sequential text.
    options = GenerationOptions(max_tokens=20, temperature=temperature, seed=7)
    expected = sequential.chat_many(prompts(), options)
    got = parallel.chat_many(prompts(), options)
    for ours, reference in zip(got, expected, strict=True):
        assert reference.text.startswith(ours.text)
        assert ours.stats.generated_tokens == min(reference.stats.generated_tokens, 20)
        if reference.stats.generated_tokens <= 20:
            assert ours.text == reference.text
            assert ours.finish_reason == reference.finish_reason
    if temperature > 0:  # the comparison is not vacuous: prompts lead to different outputs
        assert len({c.text for c in got}) > 1


def test_every_prompt_gets_a_completion_within_max_tokens(parallel: LlamaBackend) -> None:
    completions = parallel.chat_many(prompts(), GenerationOptions(max_tokens=9, temperature=0.8))
    assert len(completions) == len(TASKS)  # 5 prompts in groups of 3 and 2
    for completion in completions:
        assert 0 < completion.stats.generated_tokens <= 9
        if completion.finish_reason == "length":
            assert completion.stats.generated_tokens == 9
        assert completion.stats.generation_seconds > 0


def test_shared_prefix_is_evaluated_once(parallel: LlamaBackend) -> None:
    unrelated = [Message("system", "x"), Message("user", "unrelated")]
    parallel.chat(unrelated, GenerationOptions(4))
    token_lists = [parallel.prompt_tokens(m) for m in prompts()]
    prefix = shared_prefix_length(token_lists)
    suffixes = [len(t) - prefix for t in token_lists]
    cached = common_prefix_length(parallel.prompt_tokens(unrelated), token_lists[0])  # chat markup

    first = parallel.chat_many(prompts(), GenerationOptions(max_tokens=4))
    assert [c.stats.prompt_tokens for c in first] == [len(t) for t in token_lists]
    assert first[0].stats.evaluated_tokens == prefix - cached + suffixes[0]
    assert [c.stats.evaluated_tokens for c in first[1:]] == suffixes[1:]
    assert prefix > 5 * max(suffixes)  # the paper dominates, as in the pipeline

    # the prefix stays cached, and each finished prompt stays parked: a retry round evaluates
    # only each prompt's last token, for fresh logits
    again = parallel.chat_many(prompts()[:2], GenerationOptions(max_tokens=4, seed=9))
    assert [c.stats.evaluated_tokens for c in again] == [1, 1]
    single = parallel.chat_many(prompts()[4:], GenerationOptions(max_tokens=4, seed=9))
    assert single[0].stats.evaluated_tokens == 1


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_a_retry_from_a_parked_prompt_samples_what_a_fresh_prompt_would(
    sequential: LlamaBackend, parallel: LlamaBackend, temperature: float
) -> None:
    parallel.chat_many(prompts(), GenerationOptions(max_tokens=6, temperature=0.2, seed=1))
    retry = GenerationOptions(max_tokens=12, temperature=temperature, seed=5)
    got = parallel.chat_many([prompts()[3], prompts()[1]], retry)
    expected = sequential.chat_many([prompts()[3], prompts()[1]], retry)
    assert [c.stats.evaluated_tokens for c in got] == [1, 1]
    for ours, reference in zip(got, expected, strict=True):
        assert reference.text.startswith(ours.text) and ours.text


def test_another_papers_prompts_give_up_the_parked_ones(parallel: LlamaBackend) -> None:
    parallel.chat_many(prompts(), GenerationOptions(max_tokens=4))
    other = [
        [Message("system", "日本語で答えよ。"), Message("user", f"Other paper. {t}")] for t in TASKS
    ]
    parallel.chat_many(other[:2], GenerationOptions(max_tokens=4))
    pool = parallel._pool
    assert pool is not None and len(pool.parked) == 2
    new_prefix = shared_prefix_length([parallel.prompt_tokens(m) for m in other[:2]])
    first = parallel.prompt_tokens(other[0])
    assert all(tokens[:new_prefix] == first[:new_prefix] for tokens in pool.parked.values())
    parallel.chat(other[2], GenerationOptions(max_tokens=4))  # the sequential path drops them
    assert not pool.parked


def test_cache_is_left_for_the_next_sequential_call(
    sequential: LlamaBackend, parallel: LlamaBackend
) -> None:
    options = GenerationOptions(max_tokens=12, temperature=0.0)
    parallel.chat_many(prompts(), options)
    follow_up = prompts(["Q6: 今後の課題は何か。"])[0]
    after_parallel = parallel.chat(follow_up, options)
    fresh = sequential.chat(follow_up, options)
    assert after_parallel.text == fresh.text
    assert after_parallel.stats.evaluated_tokens < after_parallel.stats.prompt_tokens / 5


def test_stop_strings_end_a_sequence_like_a_sequential_call(
    sequential: LlamaBackend, parallel: LlamaBackend
) -> None:
    free = parallel.chat_many(prompts(), GenerationOptions(max_tokens=16, temperature=0.8))
    # an ASCII character the second output contains after its start (stop strings are matched
    # on bytes; the random model also emits bytes that are not UTF-8 and vanish from the text)
    stop = next(ch for ch in free[1].text[2:] if ch.isascii() and ch.isalnum())
    options = GenerationOptions(max_tokens=16, temperature=0.8, stop=[stop])
    got = parallel.chat_many(prompts(), options)
    expected = sequential.chat_many(prompts(), options)
    assert all(e.text.startswith(g.text) for g, e in zip(got, expected, strict=True))
    assert got[1].text == expected[1].text
    assert stop not in got[1].text
    assert len(got[1].text) < len(free[1].text)
    assert got[1].finish_reason == "stop"


def test_fewer_sequences_run_at_once_when_the_context_is_short(
    tiny_model_path: Path, sequential: LlamaBackend
) -> None:
    # The prompts take ~1100 tokens of 1300; each sequence reserves its task and 60 tokens of
    # output, so only two run beside the prefix at a time; the others wait for a free slot.
    options = GenerationOptions(max_tokens=60, temperature=0.8, seed=3)
    with LlamaBackend(tiny_model_path, n_ctx=1300, n_threads=1, parallel=4) as narrow:
        got = narrow.chat_many(prompts(), options)
    expected = sequential.chat_many(prompts(), options)
    assert len(got) == len(TASKS)
    for ours, reference in zip(got, expected, strict=True):
        assert reference.text.startswith(ours.text)
        assert ours.stats.generated_tokens == min(reference.stats.generated_tokens, 60)


def test_shared_prefix_leaves_each_prompt_a_token() -> None:
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5]]) == 3
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2
    assert shared_prefix_length([[9, 2], [1, 2]]) == 0


def test_parallel_one_decodes_one_after_another(sequential: LlamaBackend) -> None:
    assert sequential.info.params["parallel"] == 1
    completions = sequential.chat_many(prompts()[:2], GenerationOptions(max_tokens=4))
    assert len(completions) == 2


def test_parallel_completions_carry_the_log_probability_forced_decoding_gives(
    parallel: LlamaBackend,
) -> None:
    """One generated token, forced again by its id: its text need not tokenize back to it (the
    random tiny model's tokenizer splits ' m' in two)."""
    options = GenerationOptions(max_tokens=1, temperature=0.0, repeat_penalty=1.0)
    completions = parallel.chat_many(prompts(), options)
    vocabulary = range(parallel._llm.n_vocab())
    for chat, completion in zip(prompts(), completions, strict=True):
        (token,) = [t for t in vocabulary if parallel.detokenize([t]) == completion.text][:1]
        (forced,) = score_tokens(parallel._llm, None, [(parallel.prompt_tokens(chat), [token])], 1)
        assert completion.log_probability == pytest.approx(forced, abs=1e-3)


def test_parked_prompts_scoring_kept_are_given_up_when_the_prefix_needs_their_room(
    tiny_model_path: Path, sequential: LlamaBackend
) -> None:
    # The paper prompts take ~1100 tokens of 1300. Scoring another chat keeps the two parked
    # prompts (there is room), but sequence 0 now holds that chat: three new questions evaluate
    # the paper into it again, which fits only once the parked copies are given up.
    options = GenerationOptions(max_tokens=8, temperature=0.0)
    with LlamaBackend(tiny_model_path, n_ctx=1300, n_threads=1, parallel=4) as narrow:
        narrow.chat_many(prompts()[:2], options)
        narrow.score([([Message("user", "Is it new?")], "Yes")])
        assert narrow._pool is not None and len(narrow._pool.parked) == 2
        got = narrow.chat_many(prompts()[2:], options)
    expected = sequential.chat_many(prompts()[2:], options)
    assert [c.text for c in got] == [c.text for c in expected]
