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
    output: bytearray = field(default_factory=bytearray)  # detokenized so far, for stop strings
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

    Continuous batching: as soon as one sequence ends, the next prompt takes its place, while
    the KV cache has room for its task and max_tokens beside the prefix.

    The prefix is evaluated once into sequence 0 (reusing what the cache already holds) and
    left cached afterwards, as a sequential call would leave it, so later calls reuse it too.
    Stats: the first completion carries the prefix evaluation; every completion carries its own
    suffix, and a decode call's seconds are shared by the tokens it evaluated, so the sums over
    completions are the wall time spent.

    Raises:
        GenerationError: llama_decode failed (for example the KV cache is full).
    """
    import llama_cpp

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
    scheduler = _Scheduler(llm, memory, batch, prefix_len, options, width, seed)
    try:
        scheduler.run(sequences)
    finally:
        batch.free()
        scheduler.release_all()
        llm.n_tokens = prefix_len
        llm._requires_eval = True
    completions = []
    for s in sequences:
        text = s.text if s.text is not None else llm.detokenize(s.tokens, prev_tokens=s.prompt)
        completions.append(
            Completion(text.decode("utf-8", errors="ignore"), s.stats, s.finish_reason or "length")
        )
    return completions


class _Scheduler:
    """Continuous batching: up to `width` sequences live in slots (llama.cpp sequence ids); each
    decode call advances every generating sequence by one token and fills the rest of the batch
    with prompt tokens of newly admitted ones. A finished sequence frees its slot (and its KV
    cells) at once, so the batch stays full until the queue is empty."""

    def __init__(
        self,
        llm: llama_cpp.Llama,
        memory: Any,
        batch: _Batch,
        prefix_len: int,
        options: GenerationOptions,
        width: int,
        seed: int,
    ) -> None:
        self.llm, self.memory, self.batch = llm, memory, batch
        self.prefix_len, self.options, self.seed = prefix_len, options, seed
        self.free_slots = list(range(width))
        self.live: dict[int, _Sequence] = {}  # slot -> sequence
        self.cursor: dict[int, int] = {}  # slot -> prompt tokens evaluated so far
        self.room = llm.n_ctx() - prefix_len  # KV cells left beside the prefix
        self.stops = [s.encode("utf-8") for s in options.stop if s]

    def need(self, seq: _Sequence) -> int:
        return len(seq.prompt) - self.prefix_len + self.options.max_tokens

    def admit(self, seq: _Sequence) -> None:
        import llama_cpp

        slot = self.free_slots.pop(0)
        if slot != 0:  # slot 0 holds the prefix itself; the others share its cells
            llama_cpp.llama_memory_seq_cp(self.memory, 0, slot, 0, self.prefix_len)
        self.llm.set_seed(self.seed)  # every sequence samples as a sequential call would
        seq.sampler = self.llm._init_sampler(
            temp=self.options.temperature,
            repeat_penalty=self.options.repeat_penalty,
            **_SAMPLING,  # type: ignore[arg-type]
        )
        seq.stats.evaluated_tokens += len(seq.prompt) - self.prefix_len
        self.live[slot] = seq
        self.cursor[slot] = self.prefix_len
        self.room -= self.need(seq)

    def release(self, slot: int) -> None:
        import llama_cpp

        seq = self.live.pop(slot)
        self.cursor.pop(slot, None)
        llama_cpp.llama_memory_seq_rm(self.memory, slot, self.prefix_len if slot == 0 else -1, -1)
        seq.sampler.close()
        self.room += self.need(seq)
        self.free_slots.append(slot)
        self.free_slots.sort()

    def release_all(self) -> None:
        for slot in list(self.live):
            self.release(slot)

    def run(self, sequences: list[_Sequence]) -> None:
        queue = list(sequences)
        while queue or self.live:
            while queue and self.free_slots and (self.need(queue[0]) <= self.room or not self.live):
                self.admit(queue.pop(0))
            self.step()

    def step(self) -> None:
        """One decode call: generation tokens first, then prompt tokens while there is room."""
        started = time.perf_counter()
        batch, sampled = self.batch, []
        generating = [(slot, seq) for slot, seq in self.live.items() if slot not in self.cursor]
        for slot, seq in generating:
            pos = len(seq.prompt) + len(seq.tokens) - 1
            sampled.append((slot, batch.add(seq.next_token, pos, slot, True)))
        prompt_tokens: dict[int, int] = {}
        for slot, seq in self.live.items():
            if slot not in self.cursor:
                continue
            start = self.cursor[slot]
            take = min(len(seq.prompt) - start, batch.capacity - batch.n)
            for pos in range(start, start + take):
                last = pos == len(seq.prompt) - 1
                i = batch.add(seq.prompt[pos], pos, slot, last)
                if last:
                    sampled.append((slot, i))
            if take:
                prompt_tokens[slot] = take
            self.cursor[slot] = start + take
        batch.decode(self.llm._ctx.ctx)
        for slot, i in sampled:
            self.live[slot].next_token = self.live[slot].sampler.sample(self.llm._ctx, i)
        for slot in [s for s in prompt_tokens if self.cursor[s] == len(self.live[s].prompt)]:
            del self.cursor[slot]  # prompt done: it generates from the next step on

        # the decode's seconds, shared by tokens: prompt tokens count as prompt time
        elapsed = time.perf_counter() - started
        per_token = elapsed / (len(generating) + sum(prompt_tokens.values()))
        for slot, count in prompt_tokens.items():
            self.live[slot].stats.prompt_seconds += per_token * count
        for _, seq in generating:
            seq.stats.generation_seconds += per_token
        for slot, seq in list(self.live.items()):
            if slot in self.cursor:
                continue
            accept_started = time.perf_counter()
            finished = not _accept(self.llm, self.llm._model.vocab, seq, self.options.max_tokens,
                                   self.stops)  # fmt: skip
            seq.stats.generation_seconds += time.perf_counter() - accept_started
            if finished:
                self.release(slot)


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
    if stops:  # only the new piece, and what a stop string could span before it, is searched
        piece = llm.detokenize([token])
        seq.output += piece
        hits = [
            found
            for stop in stops
            if (found := seq.output.find(stop, max(0, len(seq.output) - len(piece) - len(stop))))
            >= 0
        ]
        if hits:
            seq.text = bytes(seq.output[: min(hits)])
            seq.finish_reason = "stop"
            return False
    if len(seq.tokens) >= max_tokens:
        seq.finish_reason = "length"
        return False
    return True
