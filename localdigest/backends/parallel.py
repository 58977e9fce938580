"""Decode several chats as parallel sequences sharing one evaluated prefix (llama.cpp's low-level API).

Why: generation on a CPU is bound by reading the weights, once per decode call. One decode call
with one token from each of N sequences reads them once for N tokens, so N answers about the same
paper come out faster together than one after another. The paper prefix is evaluated once into
sequence 0; `llama_memory_seq_cp` then gives its KV cells to the other sequences (in a unified
KV cache that adds sequence ids to the cells, nothing is copied), and each sequence evaluates only
its own task before generating.

A finished sequence keeps its prompt's cells ("parked"), so a retry of the same task (another
seed) evaluates only the prompt's last token: retries cost generation, not prompt evaluation.

Sampling uses the same llama.cpp sampler chain and seed as `Llama.create_completion`, so a
sequence samples what a sequential call would, up to the float differences of batched kernels.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import localdigest.backends.llama_internals as llama_internals
from localdigest.backend import CallStats, Completion, GenerationOptions, common_prefix_length
from localdigest.errors import GenerationError, ModelError

if TYPE_CHECKING:
    import llama_cpp

# Sampler settings of Llama.create_completion's defaults, which the sequential path uses.
_SAMPLING = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "typical_p": 1.0}


PARKED_SEQUENCES = 12  # finished prompts kept for retries: a 10-question round, with room


def enable_sequences(llm: llama_cpp.Llama, n_seq: int) -> None:
    """Give `llm` a fresh context that holds `n_seq` sequences in one unified KV cache.

    llama-cpp-python's `Llama` creates its context with one sequence and offers no parameter for
    more, so the context is replaced before anything was evaluated. A unified cache lets the
    sequences share the prefix cells; the context size stays the total for all sequences.

    Raises:
        ModelError: llama.cpp cannot create such a context.
    """
    params = llm.context_params
    params.n_seq_max = n_seq
    params.kv_unified = True
    try:
        llama_internals.replace_context(llm, params)
    except ValueError as exc:
        raise ModelError(
            f"llama.cpp cannot create a context for {n_seq} parallel sequences ({exc}); "
            "use --parallel 1"
        ) from None


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
    next_log_probability: float = 0.0  # of next_token under the model's raw distribution
    log_probability: float = 0.0  # summed over the accepted tokens


def log_probabilities(llm: llama_cpp.Llama, index: int, tokens: Sequence[int]) -> list[float]:
    """log p of each of `tokens` from the logits of the last decoded batch's entry `index`
    (one softmax for all: several replies are often scored from one position)."""
    import llama_cpp
    import numpy as np

    logits = np.ctypeslib.as_array(
        llama_cpp.llama_get_logits_ith(llama_internals.context_pointer(llm), index),
        shape=(llm.n_vocab(),),
    )
    top = float(logits.max())
    norm = top + float(np.log(np.exp(logits - top).sum()))
    return [float(logits[token]) - norm for token in tokens]


class Entry(NamedTuple):
    """One token to evaluate: at `pos` in each of `seqs` (a token several sequences share is
    evaluated once, its KV cell belonging to all of them), with its logits kept or not."""

    token: int
    pos: int
    seqs: Sequence[int]
    logits: bool


class Batch:
    """A llama_batch filled token by token; each token belongs to up to `max_seqs` sequences.

    `on_full` is asked to free KV cells when llama.cpp finds no room for a batch (it then
    changed nothing); True means it did, and the same batch is decoded again.
    """

    def __init__(
        self, capacity: int, max_seqs: int = 1, on_full: Callable[[], bool] | None = None
    ) -> None:
        import llama_cpp

        self.capacity = capacity
        self.batch = llama_cpp.llama_batch_init(capacity, 0, max_seqs)
        self.n = 0
        self.on_full = on_full

    def add(self, token: int, pos: int, seqs: Sequence[int], logits: bool) -> int:
        b, i = self.batch, self.n
        b.token[i], b.pos[i], b.n_seq_id[i] = token, pos, len(seqs)
        for k, seq in enumerate(seqs):
            b.seq_id[i][k] = seq
        b.logits[i] = logits
        self.n += 1
        return i

    def decode(self, ctx: Any) -> None:
        import llama_cpp

        self.batch.n_tokens = self.n
        status = llama_cpp.llama_decode(ctx, self.batch)
        while status == 1 and self.on_full is not None and self.on_full():
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


def forced_decode(
    llm: llama_cpp.Llama, batch: Batch, entries: Sequence[Entry]
) -> Iterator[tuple[int, int]]:
    """Evaluate `entries` in order, a batch at a time (nothing is sampled): the forced decoding
    that prefix evaluation and scoring share. After each llama_decode it yields (entry index,
    logits row) for every entry of that batch that asked for logits: read them before the next."""
    ctx = llama_internals.context_pointer(llm)
    for begin in range(0, len(entries), batch.capacity):
        rows = [
            (index, batch.add(*entry))
            for index, entry in enumerate(entries[begin : begin + batch.capacity], begin)
        ]
        batch.decode(ctx)
        yield from ((index, row) for index, row in rows if entries[index].logits)


class SequencePool:
    """The context's sequence ids besides 0 (which holds the shared prefix): live ones decode,
    parked ones keep the cells of a finished prompt (all but its last token) for a retry."""

    def __init__(self, n_seq: int) -> None:
        self.free = list(range(1, n_seq))
        self.parked: dict[int, list[int]] = {}  # id -> the tokens its cells hold, oldest first

    def best_match(self, prompt: list[int]) -> tuple[int | None, int]:
        """The parked id sharing the most leading tokens with `prompt`, and how many."""
        best: tuple[int | None, int] = (None, 0)
        for seq_id, tokens in self.parked.items():
            n = min(common_prefix_length(tokens, prompt), len(prompt) - 1)
            if n > best[1]:
                best = (seq_id, n)
        return best

    def park(self, memory: Any, seq_id: int, prompt: list[int]) -> None:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(memory, seq_id, len(prompt) - 1, -1)
        self.parked[seq_id] = prompt[:-1]

    def unpark(self, memory: Any, seq_id: int, keep: int = 0) -> list[int]:
        """Take a parked id back, keeping its first `keep` tokens' cells; returns its tokens."""
        import llama_cpp

        tokens = self.parked.pop(seq_id)
        llama_cpp.llama_memory_seq_rm(memory, seq_id, keep, -1)
        return tokens

    def release(self, memory: Any, seq_id: int) -> None:
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(memory, seq_id, -1, -1)
        self.free.append(seq_id)
        self.free.sort()

    def drop(self, memory: Any, seq_id: int) -> list[int]:
        """Give up a parked prompt: its id is free again. Returns the tokens it held."""
        tokens = self.unpark(memory, seq_id)
        self.release(memory, seq_id)
        return tokens

    def drop_oldest(self, memory: Any) -> bool:
        """Give up the prompt parked longest ago; False when none is parked."""
        if not self.parked:
            return False
        self.drop(memory, next(iter(self.parked)))
        return True

    def keep_only(self, memory: Any, prefix: list[int] | None) -> None:
        """Drop parked prompts that do not start with `prefix` (another paper or task), or all
        of them (None)."""
        for seq_id, tokens in list(self.parked.items()):
            if prefix is None or tokens[: len(prefix)] != prefix:
                self.drop(memory, seq_id)


def decode_parallel(
    llm: llama_cpp.Llama,
    pool: SequencePool,
    prompts: list[list[int]],
    options: GenerationOptions,
    width: int,
) -> list[Completion]:
    """Complete `prompts` (token ids), up to `width` at a time, sharing their common prefix.

    Continuous batching: as soon as one sequence ends, the next prompt takes its place, while
    the KV cache has room for its task and max_tokens beside the prefix. A prompt that a parked
    sequence already holds (a retry) starts from those cells.

    The prefix is evaluated once into sequence 0 (reusing what the cache already holds) and
    left cached afterwards, as a sequential call would leave it, so later calls reuse it too.
    Stats: the first completion carries the prefix evaluation; every completion carries its own
    suffix, and a decode call's seconds are shared by the tokens it evaluated, so the sums over
    completions are the wall time spent.

    Raises:
        GenerationError: llama_decode failed (for example the KV cache is full).
    """
    import llama_cpp

    memory = llama_cpp.llama_get_memory(llama_internals.context_pointer(llm))
    prefix_len = shared_prefix_length(prompts)
    reused = min(common_prefix_length(llama_internals.cached_tokens(llm), prompts[0]), prefix_len)
    if len(prompts) <= len(pool.parked) and all(pool.best_match(p)[1] > reused for p in prompts):
        # parked prompts go further than a longer sequence 0 would, and there are enough of them
        # (a finished sequence parks again) that no prompt must evaluate the prefix on its own
        prefix_len = reused
    prefix = prompts[0][:prefix_len]
    pool.keep_only(memory, prefix)
    seed = options.seed if options.seed is not None else random.randrange(2**32)
    sequences = [
        _Sequence(i, p, None, CallStats(prompt_tokens=len(p))) for i, p in enumerate(prompts)
    ]

    started = time.perf_counter()
    # The room counted below assumes parked prompts share the prefix's cells; ones kept while
    # sequence 0 held another prefix (scoring) do not, so a full cache gives them up.
    batch = Batch(llm.n_batch, on_full=lambda: pool.drop_oldest(memory))
    try:
        evaluate_prefix(llm, memory, batch, prefix, reused)
        sequences[0].stats.evaluated_tokens += prefix_len - reused
        sequences[0].stats.prompt_seconds += time.perf_counter() - started
        scheduler = _Scheduler(llm, memory, batch, pool, prefix_len, options, width, seed)
        try:
            scheduler.run(sequences)
        finally:
            scheduler.release_all()
    finally:
        batch.free()
        llama_internals.mark_logits_stale(llm)
    return [_completion(llm, s) for s in sequences]


def _completion(llm: llama_cpp.Llama, seq: _Sequence) -> Completion:
    """The sequence's text; its mean log-probability where the text is all it generated (a stop
    string cut none of it off)."""
    whole = seq.text is None
    text = llm.detokenize(seq.tokens, prev_tokens=seq.prompt) if whole else seq.text or b""
    mean = seq.log_probability / len(seq.tokens) if whole and seq.tokens else None
    return Completion(
        text.decode("utf-8", errors="ignore"), seq.stats, seq.finish_reason or "length", mean
    )


def evaluate_prefix(
    llm: llama_cpp.Llama, memory: Any, batch: Batch, prefix: list[int], reused: int
) -> None:
    """Sequence 0 holds `prefix`: its first `reused` tokens are kept, the rest evaluated. Only
    sequence 0's cells change (Llama.eval would drop the parked sequences' cells too)."""
    import llama_cpp

    llama_cpp.llama_memory_seq_rm(memory, 0, reused, -1)
    llm.n_tokens = reused
    rest = [Entry(token, pos, (0,), False) for pos, token in enumerate(prefix) if pos >= reused]
    for _ in forced_decode(llm, batch, rest):
        pass  # no logits wanted
    llm.input_ids[reused : len(prefix)] = prefix[reused:]
    llm.n_tokens = len(prefix)


class _Scheduler:
    """Continuous batching: up to `width` sequences are live (each in its own sequence id); each
    decode call advances every generating sequence by one token and fills the rest of the batch
    with prompt tokens of newly admitted ones. A finished sequence is parked at once, its
    generated cells freed, so the batch stays full until the queue is empty; parked prompts are
    given up, oldest first, when a new one needs their room."""

    def __init__(
        self,
        llm: llama_cpp.Llama,
        memory: Any,
        batch: Batch,
        pool: SequencePool,
        prefix_len: int,
        options: GenerationOptions,
        width: int,
        seed: int,
    ) -> None:
        self.llm, self.memory, self.batch, self.pool = llm, memory, batch, pool
        self.prefix_len, self.options, self.width, self.seed = prefix_len, options, width, seed
        self.live: dict[int, _Sequence] = {}  # sequence id -> sequence
        self.cursor: dict[int, int] = {}  # sequence id -> prompt tokens evaluated so far
        # KV cells left beside the prefix and the parked prompts
        self.room = llm.n_ctx() - prefix_len - sum(map(self.held, pool.parked.values()))
        self.stops = [s.encode("utf-8") for s in options.stop if s]

    def held(self, tokens: list[int]) -> int:
        return len(tokens) - self.prefix_len

    def need(self, seq: _Sequence) -> int:
        return len(seq.prompt) - self.prefix_len + self.options.max_tokens

    def reusable(self, seq: _Sequence) -> tuple[int, int] | None:
        """The parked id holding more of `seq`'s prompt than the prefix, and how much."""
        match, start = self.pool.best_match(seq.prompt)
        return (match, start) if match is not None and start > self.prefix_len else None

    def can_admit(self, seq: _Sequence, reuse: tuple[int, int] | None) -> bool:
        """A free place among the `width` live ones and room for the task and its output,
        making room by giving up parked prompts (oldest first) other than the one it reuses."""
        if len(self.live) >= self.width:
            return False
        reclaim = self.held(self.pool.parked[reuse[0]]) if reuse else 0
        for oldest in [i for i in self.pool.parked if not reuse or i != reuse[0]]:
            if self.need(seq) <= self.room + reclaim:
                break
            self.room += self.held(self.pool.drop(self.memory, oldest))
        return self.need(seq) <= self.room + reclaim or not self.live

    def admit(self, seq: _Sequence, reuse: tuple[int, int] | None) -> None:
        import llama_cpp

        if reuse:
            seq_id, start = reuse
            self.room += self.held(self.pool.unpark(self.memory, seq_id, keep=start))
        else:
            if not self.pool.free:  # every id is parked: give up the oldest
                self.room += self.held(self.pool.drop(self.memory, next(iter(self.pool.parked))))
            seq_id, start = self.pool.free.pop(0), self.prefix_len
            llama_cpp.llama_memory_seq_cp(self.memory, 0, seq_id, 0, self.prefix_len)
        self.llm.set_seed(self.seed)  # every sequence samples as a sequential call would
        seq.sampler = llama_internals.new_sampler(
            self.llm,
            temp=self.options.temperature,
            repeat_penalty=self.options.repeat_penalty,
            **_SAMPLING,
        )
        seq.stats.evaluated_tokens += len(seq.prompt) - start
        self.live[seq_id] = seq
        self.cursor[seq_id] = start
        self.room -= self.need(seq)

    def retire(self, seq_id: int) -> _Sequence:
        """Take a sequence out of the live ones and close its sampler."""
        seq = self.live.pop(seq_id)
        self.cursor.pop(seq_id, None)
        seq.sampler.close()
        return seq

    def finish(self, seq_id: int) -> None:
        """Park the finished sequence: its prompt stays cached for a retry."""
        seq = self.retire(seq_id)
        self.pool.park(self.memory, seq_id, seq.prompt)
        self.room += self.need(seq) - self.held(seq.prompt[:-1])

    def release_all(self) -> None:
        """After a failure: live sequences are dropped, not parked (their cells may be partial)."""
        for seq_id in list(self.live):
            self.retire(seq_id)
            self.pool.release(self.memory, seq_id)

    def run(self, sequences: list[_Sequence]) -> None:
        queue = list(sequences)
        while queue or self.live:
            while queue and self.can_admit(queue[0], reuse := self.reusable(queue[0])):
                self.admit(queue.pop(0), reuse)
            self.step()

    def step(self) -> None:
        """One decode call: generation tokens first, then prompt tokens while there is room."""
        started = time.perf_counter()
        batch, sampled = self.batch, []
        generating = [(i, seq) for i, seq in self.live.items() if i not in self.cursor]
        for seq_id, seq in generating:
            pos = len(seq.prompt) + len(seq.tokens) - 1
            sampled.append((seq_id, batch.add(seq.next_token, pos, (seq_id,), True)))
        prompt_tokens: dict[int, int] = {}
        for seq_id, seq in self.live.items():
            if seq_id not in self.cursor:
                continue
            start = self.cursor[seq_id]
            take = min(len(seq.prompt) - start, batch.capacity - batch.n)
            for pos in range(start, start + take):
                last = pos == len(seq.prompt) - 1
                i = batch.add(seq.prompt[pos], pos, (seq_id,), last)
                if last:
                    sampled.append((seq_id, i))
            if take:
                prompt_tokens[seq_id] = take
            self.cursor[seq_id] = start + take
        batch.decode(llama_internals.context_pointer(self.llm))
        for seq_id, i in sampled:
            seq = self.live[seq_id]
            seq.next_token = seq.sampler.sample(llama_internals.context(self.llm), i)
            (seq.next_log_probability,) = log_probabilities(self.llm, i, [seq.next_token])
        for seq_id in [i for i in prompt_tokens if self.cursor[i] == len(self.live[i].prompt)]:
            del self.cursor[seq_id]  # prompt done: it generates from the next step on

        # the decode's seconds, shared by tokens: prompt tokens count as prompt time
        elapsed = time.perf_counter() - started
        per_token = elapsed / (len(generating) + sum(prompt_tokens.values()))
        for seq_id, count in prompt_tokens.items():
            self.live[seq_id].stats.prompt_seconds += per_token * count
        for _, seq in generating:
            seq.stats.generation_seconds += per_token
        for seq_id, seq in list(self.live.items()):
            if seq_id in self.cursor:
                continue
            accept_started = time.perf_counter()
            finished = not _accept(self.llm, llama_internals.vocab(self.llm), seq, self.options.max_tokens,
                                   self.stops)  # fmt: skip
            seq.stats.generation_seconds += time.perf_counter() - accept_started
            if finished:
                self.finish(seq_id)


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
    seq.log_probability += seq.next_log_probability
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
