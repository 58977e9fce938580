"""Decode several chats as parallel sequences sharing one evaluated prefix (llama.cpp's low-level API).

Why: generation on a CPU is bound by reading the weights, once per decode call. One decode call
with one token from each of N sequences reads them once for N tokens, so N answers about the same
paper come out faster together than one after another. The paper prefix is evaluated once into
sequence 0; `llama_memory_seq_cp` then gives its KV cells to the other sequences (in a unified
KV cache that adds sequence ids to the cells, nothing is copied), and each sequence evaluates only
its own task before generating.

Sampling uses the same llama.cpp sampler chain and seed as `Llama.create_completion`, so a
sequence samples what a sequential call would, up to the float differences of batched kernels.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localdigest.backend import CallStats, Completion, GenerationOptions
from localdigest.backends import common_prefix_length
from localdigest.errors import GenerationError, ModelError

if TYPE_CHECKING:
    import llama_cpp

# Sampler settings of Llama.create_completion's defaults, which the sequential path uses.
_SAMPLING = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "typical_p": 1.0}


def enable_sequences(llm: llama_cpp.Llama, n_seq: int) -> None:
    """Give `llm` a fresh context that holds `n_seq` sequences in one unified KV cache.

    llama-cpp-python's `Llama` creates its context with one sequence and offers no parameter for
    more, so the context is replaced before anything was evaluated. A unified cache lets the
    sequences share the prefix cells; the context size stays the total for all sequences.

    Raises:
        ModelError: llama.cpp cannot create such a context.
    """
    import contextlib

    from llama_cpp import _internals

    params = llm.context_params
    params.n_seq_max = n_seq
    params.kv_unified = True
    llm._ctx.close()  # free the first KV cache before the new one is allocated
    try:
        context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    except ValueError as exc:
        raise ModelError(
            f"llama.cpp cannot create a context for {n_seq} parallel sequences ({exc}); "
            "use --parallel 1"
        ) from None
    llm._ctx = llm._stack.enter_context(contextlib.closing(context))
    llm.n_tokens = 0


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens all prompts start with, leaving each at least one token of its own to evaluate."""
    first = prompts[0]
    n = min(len(p) for p in prompts) - 1
    for other in prompts[1:]:
        n = min(n, common_prefix_length(first, other))
    return max(0, n)


@dataclass
class _Sequence:
    """One prompt being decoded: its tokens so far, its sampler and what it cost."""

    index: int
    prompt: list[int]
    sampler: Any
    stats: CallStats
    tokens: list[int] = field(default_factory=list)
    text: bytes | None = None  # set when a stop string cut the output
    finish_reason: str | None = None
    next_token: int = -1


class _Batch:
    """A llama_batch filled token by token; each token belongs to one sequence."""

    def __init__(self, capacity: int) -> None:
        import llama_cpp

        self.capacity = capacity
        self.batch = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.n = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        b, i = self.batch, self.n
        b.token[i], b.pos[i], b.n_seq_id[i] = token, pos, 1
        b.seq_id[i][0] = seq
        b.logits[i] = logits
        self.n += 1
        return i

    def decode(self, ctx: Any) -> None:
        import llama_cpp

        self.batch.n_tokens = self.n
        status = llama_cpp.llama_decode(ctx, self.batch)
        self.n = 0
        if status != 0:
            advice = (
                "no room in the KV cache: lower --parallel or raise --ctx" if status == 1 else ""
            )
            raise GenerationError(
                f"llama_decode failed with status {status}; {advice}".rstrip("; ")
            )

    def free(self) -> None:
        import llama_cpp

        llama_cpp.llama_batch_free(self.batch)


def decode_parallel(
    llm: llama_cpp.Llama,
    prompts: list[list[int]],
    options: GenerationOptions,
    width: int,
) -> list[Completion]:
    """Complete `prompts` (token ids), up to `width` at a time, sharing their common prefix.

    The prefix is evaluated once into sequence 0 (reusing what the cache already holds) and
    left cached afterwards, as a sequential call would leave it, so later calls reuse it too.
    Stats: the first completion carries the prefix evaluation; every completion carries its own
    suffix, and a decode step's seconds are shared among the sequences it advanced, so the sums
    over completions are the wall time spent.

    Raises:
        GenerationError: llama_decode failed (for example the KV cache is full).
    """
    import llama_cpp

    n_ctx = llm.n_ctx()
    prefix_len = shared_prefix_length(prompts)
    prefix = prompts[0][:prefix_len]
    seed = options.seed if options.seed is not None else random.randrange(2**32)
    sequences = [
        _Sequence(i, p, None, CallStats(prompt_tokens=len(p))) for i, p in enumerate(prompts)
    ]

    started = time.perf_counter()
    reused = min(common_prefix_length(llm._input_ids.tolist(), prefix), prefix_len)
    llm.n_tokens = reused
    try:
        llm.eval(prefix[reused:])  # drops every sequence's cells after `reused`, then evaluates
    except RuntimeError as exc:
        raise GenerationError(f"llama.cpp failed while evaluating the prompt: {exc}") from None
    sequences[0].stats.evaluated_tokens += prefix_len - reused
    sequences[0].stats.prompt_seconds += time.perf_counter() - started

    memory = llama_cpp.llama_get_memory(llm._ctx.ctx)
    batch = _Batch(llm.n_batch)
    try:
        for group in _groups(sequences, prefix_len, options.max_tokens, width, n_ctx):
            llm.set_seed(seed)
            for seq in group:
                seq.sampler = llm._init_sampler(
                    temp=options.temperature,
                    repeat_penalty=options.repeat_penalty,
                    **_SAMPLING,  # type: ignore[arg-type]
                )
            try:
                _decode_group(llm, memory, batch, group, prefix_len, options)
            finally:
                for slot in range(len(group)):
                    llama_cpp.llama_memory_seq_rm(memory, slot, prefix_len if slot == 0 else -1, -1)
                for seq in group:
                    seq.sampler.close()
    finally:
        batch.free()
        llm.n_tokens = prefix_len
        llm._requires_eval = True
    completions = []
    for s in sequences:
        text = s.text if s.text is not None else llm.detokenize(s.tokens, prev_tokens=s.prompt)
        completions.append(
            Completion(text.decode("utf-8", errors="ignore"), s.stats, s.finish_reason or "length")
        )
    return completions


def _groups(
    sequences: list[_Sequence], prefix_len: int, max_tokens: int, width: int, n_ctx: int
) -> list[list[_Sequence]]:
    """Consecutive groups of at most `width` whose suffixes and outputs fit beside the prefix."""
    groups: list[list[_Sequence]] = []
    used = prefix_len
    for seq in sequences:
        need = len(seq.prompt) - prefix_len + max_tokens
        if not groups or len(groups[-1]) >= width or used + need > n_ctx:
            groups.append([])
            used = prefix_len
        groups[-1].append(seq)
        used += need
    return groups


def _decode_group(
    llm: llama_cpp.Llama,
    memory: Any,
    batch: _Batch,
    group: list[_Sequence],
    prefix_len: int,
    options: GenerationOptions,
) -> None:
    """Evaluate each sequence's suffix, then generate one token per live sequence per decode."""
    import llama_cpp

    ctx = llm._ctx.ctx
    for slot in range(1, len(group)):
        llama_cpp.llama_memory_seq_cp(memory, 0, slot, -1, -1)

    # Suffixes: packed into batches of at most n_batch tokens; a sequence samples its first token
    # right after the decode that evaluated its last prompt token.
    pending: list[tuple[_Sequence, int]] = []
    chunk_started = time.perf_counter()
    chunk_tokens: dict[int, int] = {}

    def flush() -> None:
        nonlocal chunk_started
        batch.decode(ctx)
        elapsed = time.perf_counter() - chunk_started
        total = sum(chunk_tokens.values())
        for slot, count in chunk_tokens.items():
            group[slot].stats.prompt_seconds += elapsed * count / total
        for seq, i in pending:
            seq.next_token = seq.sampler.sample(llm._ctx, i)
        pending.clear()
        chunk_tokens.clear()
        chunk_started = time.perf_counter()

    for slot, seq in enumerate(group):
        suffix = seq.prompt[prefix_len:]
        seq.stats.evaluated_tokens += len(suffix)
        for k, token in enumerate(suffix):
            last = k == len(suffix) - 1
            i = batch.add(token, prefix_len + k, slot, last)
            chunk_tokens[slot] = chunk_tokens.get(slot, 0) + 1
            if last:
                pending.append((seq, i))
            if batch.n == batch.capacity:
                flush()
    if batch.n:
        flush()

    stops = [s.encode("utf-8") for s in options.stop if s]
    vocab = llm._model.vocab
    live = list(enumerate(group))
    while live:
        step_started = time.perf_counter()
        advancing = []
        for slot, seq in live:
            if _accept(llm, vocab, seq, options.max_tokens, stops):
                advancing.append((slot, seq))
        for slot, seq in advancing:
            pos = len(seq.prompt) + len(seq.tokens) - 1
            pending.append((seq, batch.add(seq.next_token, pos, slot, True)))
        if advancing:
            batch.decode(ctx)
            for seq, i in pending:
                seq.next_token = seq.sampler.sample(llm._ctx, i)
            pending.clear()
        elapsed = time.perf_counter() - step_started
        for _, seq in live:
            seq.stats.generation_seconds += elapsed / len(live)
        live = advancing


def _accept(
    llm: llama_cpp.Llama, vocab: Any, seq: _Sequence, max_tokens: int, stops: list[bytes]
) -> bool:
    """Take the sampled token into the sequence; False when the sequence is finished."""
    import llama_cpp

    token = seq.next_token
    if llama_cpp.llama_vocab_is_eog(vocab, token):
        seq.finish_reason = "stop"
        return False
    seq.tokens.append(token)
    seq.stats.generated_tokens += 1
    if stops:  # detokenizing every step costs; only needed to look for stop strings
        text = llm.detokenize(seq.tokens, prev_tokens=seq.prompt)
        found = [s for s in stops if s in text]
        if found:
            seq.text = text[: text.index(found[0])]
            seq.finish_reason = "stop"
            return False
    if len(seq.tokens) >= max_tokens:
        seq.finish_reason = "length"
        return False
    return True
