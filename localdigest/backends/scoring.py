"""Forced decoding: how probable the model finds given replies to chats, without generating them.

Why: the model's own probability of a translation (and of the English source read back from it)
predicts a strict reader's verdict far better than our surface checks do (issue 22), and it
costs one evaluation of the reply's tokens where a generated read-back cost a second
generation. Scoring every translation of a paper that way was still its largest extra cost, so
the pairs are decoded together, each token evaluated once however many pairs share it:

- the prefix all pairs share (system prompt, worked examples) is evaluated once into sequence 0,
  reusing what the cache already holds, and its cells are shared with the other sequences;
- the rest of the pairs is a tree of token paths: one sequence per distinct path, and a token
  that several paths share is evaluated once for all of them. Replies to the same prompt share
  the prompt; one-token replies ("Yes", "No") are all read from the prompt's last logits;
- a reply's last token is never evaluated (nothing is predicted from it), and logits are kept
  only at the positions that predict a reply token;
- several sequences go into one llama_decode batch. Parked prompts of the parallel decoder stay
  while the cache has room, given up oldest first when it has not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import localdigest.backends.llama_internals as llama_internals
from localdigest.backend import common_prefix_length
from localdigest.backends.parallel import (
    Batch,
    Entry,
    SequencePool,
    evaluate_prefix,
    forced_decode,
    log_probabilities,
    shared_prefix_length,
)

if TYPE_CHECKING:
    import llama_cpp

TokenPair = tuple[list[int], list[int]]  # prompt and reply token ids


@dataclass
class _Path:
    """The tokens a group of pairs needs evaluated after the shared prefix (the rest of their
    prompt and their reply but its last token), and those pairs."""

    tokens: list[int]
    pairs: list[int]


def score_tokens(
    llm: llama_cpp.Llama, pool: SequencePool | None, pairs: Sequence[TokenPair], width: int
) -> list[float]:
    """Mean log-probability of each reply's tokens after its prompt (0 for an empty reply).

    Up to `width` paths are decoded together in sequences of `pool` (only sequence 0 without a
    pool). Sequence 0 is left holding the shared prefix, so the next call sharing it reuses it.

    Raises:
        GenerationError: llama_decode failed (no room even without parked prompts).
    """
    import llama_cpp

    scored = [i for i, (_, reply) in enumerate(pairs) if reply]
    totals = [0.0] * len(pairs)
    if not scored:
        return totals
    memory = llama_cpp.llama_get_memory(llama_internals.context_pointer(llm))
    prompts = [pairs[i][0] for i in scored]
    prefix_len = shared_prefix_length(prompts)
    paths = _paths(pairs, scored, prefix_len)
    ids = _sequence_ids(pool, memory, min(width, len(paths)))
    on_full = (lambda: pool.drop_oldest(memory)) if pool else None
    batch = Batch(llm.n_batch, len(ids), on_full)
    try:
        reused = common_prefix_length(llama_internals.cached_tokens(llm), prompts[0])
        evaluate_prefix(llm, memory, batch, prompts[0][:prefix_len], min(reused, prefix_len))
        for group in _rounds(paths, len(ids), llm.n_ctx() - prefix_len):
            _score_round(llm, memory, batch, pairs, group, ids, prefix_len, totals)
    finally:
        batch.free()
        llama_internals.mark_logits_stale(llm)
    return [
        total / len(reply) if reply else 0.0
        for total, (_, reply) in zip(totals, pairs, strict=True)
    ]


def _sequence_ids(pool: SequencePool | None, memory: Any, width: int) -> list[int]:
    """Up to `width` free sequence ids, a path's each; parked prompts are given up (oldest
    first) only where too few are free. Without a pool, sequence 0 takes each path in turn."""
    if pool is None:
        return [0]
    while len(pool.free) < width and pool.drop_oldest(memory):
        pass
    return pool.free[:width]


def _paths(pairs: Sequence[TokenPair], scored: list[int], prefix_len: int) -> list[_Path]:
    """One path per distinct token sequence to evaluate, sorted so that paths sharing leading
    tokens are neighbours (a path then shares the most with the one before it)."""
    paths: dict[tuple[int, ...], list[int]] = {}
    for i in scored:
        prompt, reply = pairs[i]
        paths.setdefault(tuple(prompt[prefix_len:] + reply[:-1]), []).append(i)
    return [_Path(list(tokens), found) for tokens, found in sorted(paths.items())]


def _rounds(paths: list[_Path], width: int, cells: int) -> list[list[_Path]]:
    """Neighbouring paths in groups of at most `width` whose tree fits in `cells` KV cells."""
    rounds: list[list[_Path]] = []
    used = 0
    for path in paths:
        new = len(path.tokens)
        if rounds and len(rounds[-1]) < width:
            new -= common_prefix_length(rounds[-1][-1].tokens, path.tokens)
            if used + new <= cells:
                rounds[-1].append(path)
                used += new
                continue
        rounds.append([path])
        used = len(path.tokens)
    return rounds


def _score_round(
    llm: llama_cpp.Llama,
    memory: Any,
    batch: Batch,
    pairs: Sequence[TokenPair],
    paths: list[_Path],
    ids: list[int],
    prefix_len: int,
    totals: list[float],
) -> None:
    """Decode one group of paths, each in its own sequence beside the prefix, adding each pair's
    log-probabilities to `totals`; the sequences are emptied again afterwards."""
    import llama_cpp

    ids = ids[: len(paths)]
    entries, targets = _tree(pairs, paths, ids, prefix_len)
    for seq_id in ids:
        if seq_id:
            llama_cpp.llama_memory_seq_cp(memory, 0, seq_id, 0, prefix_len)
    try:
        for index, row in forced_decode(llm, batch, entries):
            wanted = targets[index]
            for (pair, _), value in zip(
                wanted, log_probabilities(llm, row, [t for _, t in wanted]), strict=True
            ):
                totals[pair] += value
    finally:
        for seq_id in ids:
            llama_cpp.llama_memory_seq_rm(memory, seq_id, 0 if seq_id else prefix_len, -1)


def _tree(
    pairs: Sequence[TokenPair], paths: list[_Path], ids: list[int], prefix_len: int
) -> tuple[list[Entry], dict[int, list[tuple[int, int]]]]:
    """The entries that evaluate `paths` as a tree (a token the paths share once, in every
    sequence whose path passes through it; parents before children, as llama.cpp needs each
    sequence's positions in order), and per entry the (pair, token) its logits predict."""
    tokens: list[tuple[int, int]] = []  # (token, position)
    seqs: list[list[int]] = []
    targets: dict[int, list[tuple[int, int]]] = {}
    above: list[int] = []  # the entries on the previous path
    previous: list[int] = []
    for path, seq_id in zip(paths, ids, strict=True):
        shared = common_prefix_length(previous, path.tokens)
        above = above[:shared]
        for depth in range(shared, len(path.tokens)):
            above.append(len(tokens))
            tokens.append((path.tokens[depth], prefix_len + depth))
            seqs.append([])
        for entry in above:
            seqs[entry].append(seq_id)
        for pair in path.pairs:
            prompt, reply = pairs[pair]
            whole = prompt + reply
            for depth in range(len(prompt) - 1 - prefix_len, len(path.tokens)):
                targets.setdefault(above[depth], []).append((pair, whole[prefix_len + depth + 1]))
        previous = path.tokens
    entries = [Entry(token, pos, seqs[i], i in targets) for i, (token, pos) in enumerate(tokens)]
    return entries, targets
