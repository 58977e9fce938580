"""The llama.cpp backend on the tiny generated GGUF: the real load, template, cache and scoring path.

Also the conformance tests: the fake and the llama backend behave alike on the interface, with
the tiny model and with real models of two families (Qwen2.5, the default: ChatML; Gemma 3 270M:
no chat template, a sliding window; fetched once per machine, see conftest.real_model).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localdigest.backend import (
    Backend,
    CallStats,
    Completion,
    GenerationOptions,
    Message,
    ModelInfo,
    common_prefix_length,
)
from localdigest.backends import load_backend
from localdigest.backends.fake import FakeBackend
from localdigest.backends.llama import (
    LlamaBackend,
    ModelSupport,
    check_support,
    count_physical_cores,
    has_amx,
    physical_cores,
)
from localdigest.config import Settings
from localdigest.errors import ModelError, UsageError
from localdigest.models import ModelEntry, load_registry

PAPER = "Abstract: we propose a method for reading research papers offline. " * 30


def ask(task: str) -> list[Message]:
    return [Message("system", "Answer in Japanese."), Message("user", f"{PAPER}\n\n{task}")]


@pytest.fixture(scope="module")
def tiny(tiny_model_path: Path) -> Iterator[LlamaBackend]:
    with LlamaBackend(tiny_model_path, n_ctx=2048, seed=1) as backend:
        yield backend


@pytest.fixture(scope="module")
def default_model(default_model_path: Path) -> Iterator[LlamaBackend]:
    entry = load_registry()["default"]
    with LlamaBackend(default_model_path, entry=entry, n_ctx=2048, seed=1) as backend:
        yield backend


@pytest.fixture(scope="module")
def gemma(gemma_model_path: Path) -> Iterator[LlamaBackend]:
    entry = load_registry()["gemma-3-270m"]
    with LlamaBackend(gemma_model_path, entry=entry, n_ctx=2048, seed=1) as backend:
        yield backend


@pytest.fixture(
    params=[
        "fake",
        "tiny",
        pytest.param("default_model", marks=pytest.mark.slow),
        pytest.param("gemma", marks=pytest.mark.slow),
    ]
)
def any_backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "fake":
        return FakeBackend(lambda messages, options: "回答です", n_ctx=2048)
    backend: Backend = request.getfixturevalue(request.param)
    return backend


# ------------------------------------------------------------ conformance


def test_backends_conform_to_the_interface(any_backend: Backend) -> None:
    assert isinstance(any_backend, Backend)
    assert isinstance(any_backend.info, ModelInfo)
    assert any_backend.info.n_ctx == 2048
    short, longer = any_backend.count_tokens("論文"), any_backend.count_tokens("論文を読む。" * 10)
    assert 0 < short < longer
    completion = any_backend.chat(ask("Task: summarise."), GenerationOptions(max_tokens=8))
    assert isinstance(completion, Completion)
    assert isinstance(completion.text, str)
    assert completion.finish_reason in {"stop", "length"}
    assert 0 < completion.stats.generated_tokens <= 8
    many = any_backend.chat_many(
        [ask("Task: one."), ask("Task: two.")], GenerationOptions(max_tokens=4)
    )
    assert len(many) == 2
    assert many[1].stats.evaluated_tokens < many[1].stats.prompt_tokens // 10


def test_a_backend_that_forgets_evaluates_every_prompt_whole_again(any_backend: Backend) -> None:
    options = GenerationOptions(max_tokens=4)
    any_backend.chat_many([ask("Task: one."), ask("Task: two.")], options)  # parks prompts
    reused = any_backend.chat(ask("Task: one."), options)
    any_backend.forget()
    fresh = any_backend.chat(ask("Task: one."), options)
    any_backend.forget()
    again = any_backend.chat(ask("Task: one."), options)
    assert reused.stats.evaluated_tokens < reused.stats.prompt_tokens // 10
    assert fresh.stats.evaluated_tokens == fresh.stats.prompt_tokens
    assert (again.text, again.stats.evaluated_tokens) == (fresh.text, fresh.stats.evaluated_tokens)


def test_backends_refuse_a_context_too_small(any_backend: Backend) -> None:
    with pytest.raises(ModelError, match="context too small"):
        any_backend.chat(ask("Task."), GenerationOptions(max_tokens=2000))


# ------------------------------------------------------------ loading and tokenizing


def test_info_describes_the_loaded_model(tiny: LlamaBackend, tiny_model_path: Path) -> None:
    info = tiny.info
    assert (info.name, info.path, info.architecture) == ("tiny", str(tiny_model_path), "llama")
    assert (info.n_ctx_train, info.n_ctx) == (4096, 2048)
    assert info.sha256 is not None and len(info.sha256) == 64
    assert info.params["threads"] == physical_cores()
    assert info.params["gpu_layers"] in {0, -1}
    assert info.params["flash_attn"] is (info.params["gpu_layers"] != 0)


@pytest.mark.parametrize(("hint", "expected"), [(1024, 1024), (100_000, 4096), (None, 4096)])
def test_context_follows_the_hint_up_to_the_trained_length(
    tiny_model_path: Path, hint: int | None, expected: int
) -> None:
    with LlamaBackend(tiny_model_path, n_ctx_hint=hint) as backend:
        assert backend.info.n_ctx == expected


def test_japanese_and_any_text_tokenizes_and_round_trips(tiny: LlamaBackend) -> None:
    text = "本研究では、新しい手法を提案する。 Ω≈√ emoji 🙂"
    tokens = tiny.tokenize(text)
    assert tiny.count_tokens(text) == len(tokens) > 0
    assert tiny.detokenize(tokens).strip() == text


def test_chat_template_from_the_gguf_is_applied(tiny: LlamaBackend) -> None:
    messages = [Message("system", "S"), Message("user", "U")]
    prompt = tiny.format_prompt(messages)
    assert (
        prompt
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    )
    tokens = tiny.prompt_tokens(messages)
    im_start = tiny.prompt_tokens([])  # just "<|im_start|>assistant\n"
    assert tokens.count(im_start[0]) == 3  # a single special token per turn, not its characters


# ------------------------------------------------------------ prefix reuse and statistics


def test_second_chat_evaluates_only_the_suffix_after_the_shared_paper(tiny: LlamaBackend) -> None:
    options = GenerationOptions(max_tokens=6)
    translate, question = ask("Task: translate the abstract."), ask("Task: ask about the method.")
    first = tiny.chat(translate, options)
    second = tiny.chat(question, options)
    third = tiny.chat(translate, options)
    shared = common_prefix_length(tiny.prompt_tokens(translate), tiny.prompt_tokens(question))
    assert first.stats.prompt_tokens > 500
    assert shared > 0.95 * first.stats.prompt_tokens  # the paper is the shared prefix
    assert second.stats.evaluated_tokens == second.stats.prompt_tokens - shared
    assert third.stats.evaluated_tokens == third.stats.prompt_tokens - shared
    assert third.text == first.text  # same prompt and seed after reuse: the same answer


def test_stats_are_populated(tiny: LlamaBackend) -> None:
    unrelated = [Message("user", "an unrelated prompt replaces the cached paper")]
    tiny.chat(unrelated, GenerationOptions(max_tokens=2))
    messages = ask("Task: summarise.")
    completion = tiny.chat(messages, GenerationOptions(max_tokens=5))
    stats = completion.stats
    shared = common_prefix_length(tiny.prompt_tokens(unrelated), tiny.prompt_tokens(messages))
    assert stats.prompt_tokens == len(tiny.prompt_tokens(messages))
    assert stats.evaluated_tokens == stats.prompt_tokens - shared > 500
    assert 0 < stats.generated_tokens <= 5
    assert stats.prompt_seconds > 0 and stats.generation_seconds > 0
    total = CallStats()
    total.add(stats)
    total.add(stats)
    assert total.generated_tokens == 2 * stats.generated_tokens


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        LlamaBackend(tmp_path / "absent.gguf")


def test_missing_registry_model_says_how_to_install(tmp_path: Path) -> None:
    settings = Settings(model="default", models_dir=str(tmp_path))
    with pytest.raises(ModelError, match="localdigest models install default"):
        load_backend(settings)


def test_unknown_model_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown model 'nonesuch'"):
        load_backend(Settings(model="nonesuch"))


def test_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 this is a zip file, not a model")
    with pytest.raises(ModelError, match="not a GGUF"):
        LlamaBackend(path)


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_file(tmp_path: Path, tiny_model_path: Path, keep: float) -> None:
    data = tiny_model_path.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError, match="truncated"):
        LlamaBackend(path)


def test_size_differs_from_registry(tmp_path: Path, tiny_model_path: Path) -> None:
    entry = ModelEntry(name="tiny", file="tiny.gguf", size=tiny_model_path.stat().st_size + 10)
    with pytest.raises(ModelError, match="truncated"):
        LlamaBackend(tiny_model_path, entry=entry)


def test_checksum_mismatch(tiny_model_path: Path) -> None:
    entry = ModelEntry(name="tiny", file="tiny.gguf", sha256="0" * 64, pypi=None)
    with pytest.raises(ModelError, match="checksum mismatch"):
        LlamaBackend(tiny_model_path, entry=entry)


def alien_gguf(path: Path, *, context_length: int = 0) -> Path:
    """A GGUF of an architecture no llama.cpp knows."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "nosucharch")
    if context_length:
        writer.add_context_length(context_length)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_unsupported_architecture(tmp_path: Path) -> None:
    path = alien_gguf(tmp_path / "alien.gguf")
    with pytest.raises(ModelError, match="cannot load this model \\(architecture 'nosucharch'\\)"):
        LlamaBackend(path)


def without_chat_template(tiny_model_path: Path, copy: Path) -> Path:
    """The tiny model with its chat template's key renamed: a GGUF that has none."""
    raw = bytearray(tiny_model_path.read_bytes())
    at = raw.find(b"tokenizer.chat_template")
    raw[at : at + len("tokenizer.chat_template")] = b"tokenizer.chat_templatX"
    copy.write_bytes(bytes(raw))
    return copy


def test_models_add_checks_architecture_context_and_chat_template(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    support = check_support(tiny_model_path)
    assert support == ModelSupport("llama", 4096, 0, chat_template=True)
    assert support.describe() == (
        "architecture llama (llama.cpp loads it), trained context 4096 tokens, "
        "its chat template from the GGUF"
    )
    plain = check_support(without_chat_template(tiny_model_path, tmp_path / "plain.gguf"))
    assert "no chat template: the plain User:/Assistant: format is used" in plain.describe()
    with pytest.raises(ModelError, match="no context length \\(nosucharch.context_length\\)"):
        check_support(alien_gguf(tmp_path / "alien.gguf"))
    with pytest.raises(ModelError, match="cannot load this model \\(architecture 'nosucharch'\\)"):
        check_support(alien_gguf(tmp_path / "alien2.gguf", context_length=2048))


def test_a_chat_template_that_cannot_render_is_refused(tmp_path: Path) -> None:
    from tinymodel import build_tiny_model

    path = build_tiny_model(tmp_path / "bad.gguf", chat_template="{{ messages[0]['content'] ")
    with pytest.raises(ModelError, match="chat template cannot be used"):
        check_support(path)
    with pytest.raises(ModelError, match="chat template cannot be used"):
        LlamaBackend(path)


def test_a_gguf_without_chat_template_gets_the_plain_format(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    copy = without_chat_template(tiny_model_path, tmp_path / "plain.gguf")
    with LlamaBackend(copy, n_ctx=1024) as backend:
        assert backend.info.params["chat_template"] == "plain"
        prompt = backend.format_prompt([Message("system", "S"), Message("user", "U")])
        assert prompt == "S\n\nUser:\nU\n\nAssistant:\n"
        assert backend.stops(GenerationOptions(stop=["。"])) == ["。", "\nUser:", "\nAssistant:"]
        assert (
            backend.chat([Message("user", "U")], GenerationOptions(max_tokens=3)).text is not None
        )


def test_a_template_without_system_role_gets_the_system_message_in_the_first_turn(
    tmp_path: Path,
) -> None:
    import llama_cpp
    from tinymodel import GEMMA_TEMPLATE, build_tiny_model

    from localdigest.backends import llama_internals

    path = build_tiny_model(tmp_path / "turns.gguf", chat_template=GEMMA_TEMPLATE)
    messages = [Message("system", "S"), Message("user", "U"), Message("assistant", "A"),
                Message("user", "V")]  # fmt: skip
    with LlamaBackend(path, n_ctx=1024) as backend:
        assert backend.info.params["chat_template"] == "gguf"
        assert backend.format_prompt(messages) == (
            "<s><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n"
            "<start_of_turn>user\nV<end_of_turn>\n<start_of_turn>model\n"
        )
        tokens = backend.prompt_tokens(messages)
        bos = backend._llm.token_bos()
        assert tokens[0] == bos and tokens[1] != bos  # the template's BOS, not a second one
        # no stop strings: the turn's end is one of the GGUF's end-of-generation tokens (by its
        # text, as llama.cpp reads the vocabulary), where both decoding paths stop
        assert backend.stops(GenerationOptions()) == []
        (end_of_turn,) = backend._llm.tokenize(b"<end_of_turn>", add_bos=False, special=True)
        assert end_of_turn != backend._llm.token_eos()
        assert llama_cpp.llama_vocab_is_eog(llama_internals.vocab(backend._llm), end_of_turn)
        assert backend.chat(messages, GenerationOptions(max_tokens=3)).stats.generated_tokens


def test_physical_cores_ignore_hyperthreads_and_respect_affinity() -> None:
    cpuinfo = "\n\n".join(
        f"processor\t: {cpu}\nphysical id\t: 0\ncore id\t\t: {cpu % 2}" for cpu in range(4)
    )
    assert count_physical_cores(cpuinfo, None) == 2
    assert count_physical_cores(cpuinfo, {0, 2}) == 1
    assert count_physical_cores("", None) is None


def test_amx_is_read_from_the_cpu_flags() -> None:
    assert has_amx("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16 amx_tile amx_int8\n")
    assert not has_amx("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert not has_amx("")


def test_any_gguf_path_loads_and_runs_without_network(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def no_network(*args: object) -> None:
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    backend = load_backend(Settings(model=str(tiny_model_path), ctx=3072, threads=1))
    assert isinstance(backend, LlamaBackend)
    with backend:
        assert (backend.info.name, backend.info.n_ctx) == ("tiny", 3072)
        assert backend.info.params["threads"] == 1
        assert backend.chat(ask("Task."), GenerationOptions(max_tokens=3)).stats.generated_tokens


# ------------------------------------------------------------ scoring (forced decoding)


def test_backends_score_replies_deterministically(any_backend: Backend) -> None:
    pairs = [(ask("Task: one."), "回答です"), (ask("Task: two."), "The answer is no.")]
    first = any_backend.score(pairs)
    assert len(first) == 2 and all(isinstance(s, float) and s <= 0 for s in first)
    # In another order the cache holds other tokens and the reply is evaluated in another batch:
    # quantized kernels round by batch (measured up to 0.05 on the default model), f32 ones not.
    again = any_backend.score(list(reversed(pairs)))
    assert again == pytest.approx(list(reversed(first)), abs=0.1)


def test_a_greedy_token_scores_at_least_as_high_as_any_other(tiny: LlamaBackend) -> None:
    chat = ask("Task: say one word.")
    options = GenerationOptions(max_tokens=1, temperature=0.0, repeat_penalty=1.0)
    token = tiny.tokenize(tiny.chat(chat, options).text)
    greedy = tiny.detokenize(token)
    others = [tiny.detokenize([t]) for t in tiny.tokenize("the paper 論文 x") if [t] != token]
    scores = tiny.score([(chat, greedy)] + [(chat, other) for other in others])
    assert all(scores[0] >= s for s in scores[1:]), scores


def test_scoring_reuses_the_cache_without_changing_scores_or_later_chats(
    tiny: LlamaBackend,
) -> None:
    pairs = [(ask(f"Task: {n}."), f"答え{n}") for n in ("one", "two")]
    options = GenerationOptions(max_tokens=6, temperature=0.0)
    before = [c.text for c in tiny.chat_many([p for p, _ in pairs], options)]
    warm = tiny.score(pairs)  # the paper prefix is cached by the chats before
    tiny.chat(ask("Task: something else entirely."), GenerationOptions(max_tokens=2))
    assert tiny.score(pairs) == pytest.approx(warm, abs=1e-3)
    assert [c.text for c in tiny.chat_many([p for p, _ in pairs], options)] == before


def test_scoring_refuses_a_reply_the_context_cannot_hold(any_backend: Backend) -> None:
    with pytest.raises(ModelError, match="context too small"):
        any_backend.score([(ask("Task."), "長い答え。" * 1000)])


def reference_scores(
    path: Path, backend: LlamaBackend, pairs: list[tuple[list[Message], str]]
) -> list[float]:
    """Each pair alone through llama-cpp-python's own path: `Llama.eval` of prompt and reply
    in a fresh cache, keeping every position's logits."""
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(model_path=str(path), n_ctx=2048, logits_all=True, verbose=False)
    scores = []
    for messages, reply in pairs:
        prompt, tokens = backend.prompt_tokens(messages), backend.tokenize(reply)
        llm.reset()
        llm.eval(prompt + tokens)
        logits = llm.scores[len(prompt) - 1 : len(prompt) + len(tokens) - 1].astype(np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_softmax = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
        scores.append(float(log_softmax[np.arange(len(tokens)), tokens].mean()))
    llm.close()
    return scores


def channel_pairs() -> list[tuple[list[Message], str]]:
    """Pairs as the translator's channel score makes them: one system prompt, a different user
    message and reply each, replies of different lengths (one of one token, one repeated)."""
    reader = Message("system", "Translate the Japanese sentence into English. " * 8)
    texts = ["本研究では新しい手法を提案する。", "精度は3%向上した。", "限界もある。"] * 2
    replies = ["We propose a new method.", "Accuracy rose by 3 points.", "x", "We propose.",
               "There are limits to it, as the paper says at length.", "x"]  # fmt: skip
    return [([reader, Message("user", t)], r) for t, r in zip(texts, replies, strict=True)]


def test_batched_scores_equal_one_pair_at_a_time(tiny: LlamaBackend, tiny_model_path: Path) -> None:
    pairs = channel_pairs()
    alone = [tiny.score([pair])[0] for pair in pairs]
    assert alone == pytest.approx(reference_scores(tiny_model_path, tiny, pairs), abs=1e-3)
    pool = tiny._pool
    assert pool is not None
    short = [[Message("system", "S"), Message("user", f"{PAPER[:200]} Task {n}.")] for n in "ab"]
    tiny.chat_many(short, GenerationOptions(max_tokens=4))
    assert tiny.score(pairs) == pytest.approx(alone, abs=1e-3)
    assert len(pool.parked) == 2  # the cache had room: the parked prompts stay for a retry
    # two parked prompts of 1600 tokens each leave no room in 2048: given up as needed
    tiny.chat_many([ask("Task: one."), ask("Task: two.")], GenerationOptions(max_tokens=4))
    assert tiny.score(pairs) == pytest.approx(alone, abs=1e-3)
    assert tiny.score([(pairs[0][0], "")]) == [0.0]


def test_pairs_sharing_a_prompt_evaluate_it_once(
    tiny: LlamaBackend, tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localdigest.backends.parallel import Batch

    prompts = [ask(f"Question {n}: is the method new? Answer Yes or No.") for n in range(5)]
    replies = ["Yes", "No", " yes", "No, it is not new."]
    pairs = [(chat, reply) for chat in prompts for reply in replies]
    tiny.chat([Message("user", "unrelated")], GenerationOptions(max_tokens=1))
    evaluated: list[int] = []
    decode = Batch.decode
    monkeypatch.setattr(
        Batch, "decode", lambda self, ctx: (evaluated.append(self.n), decode(self, ctx))[1]
    )
    scores = tiny.score(pairs)
    monkeypatch.undo()

    tokens = [tiny.prompt_tokens(chat) for chat in prompts]
    shared = common_prefix_length(tokens[0], tokens[1])
    cached = common_prefix_length(tiny.prompt_tokens([Message("user", "unrelated")]), tokens[0])
    # each prompt's own tokens once, then each distinct start of a reply once ("No" starts the
    # long reply; a reply's last token predicts nothing, so a one-token reply adds none)
    starts = {tuple(r[:k]) for r in map(tiny.tokenize, replies) for k in range(1, len(r))}
    assert sum(evaluated) == shared - cached + 5 * (len(tokens[0]) - shared + len(starts))
    assert scores == pytest.approx(reference_scores(tiny_model_path, tiny, pairs), abs=1e-3)
