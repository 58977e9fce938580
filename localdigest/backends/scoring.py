"""Forced decoding: how probable the model finds a given reply to a chat, without generating it.

Why: the model's own probability of a translation (and of the English source read back from it)
predicts a strict reader's verdict far better than our surface checks do (issue 22), and it
costs one evaluation of the reply's tokens where a generated read-back cost a second
generation. The chat's prompt tokens that the KV cache already holds (the system prompt and
worked examples shared by every sentence) are not evaluated again; logits are requested only at
the positions that predict a reply token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import localdigest.backends.llama_internals as llama_internals
from localdigest.backend import common_prefix_length

if TYPE_CHECKING:
    import llama_cpp


def mean_log_probability(llm: llama_cpp.Llama, prompt: list[int], reply: list[int]) -> float:
    """Mean log-probability of `reply`'s tokens after `prompt`, in sequence 0 of `llm`'s cache.

    Sequence 0 is left holding prompt + reply, so the next call sharing the prompt reuses it.

    Raises:
        GenerationError: llama_decode failed.
    """
    import llama_cpp

    from localdigest.backends.parallel import Batch, token_log_probability

    if not reply:
        return 0.0
    tokens = prompt + reply
    first_scored = len(prompt) - 1  # its logits predict the reply's first token
    start = min(common_prefix_length(llama_internals.cached_tokens(llm), tokens), first_scored)
    memory = llama_cpp.llama_get_memory(llama_internals.context_pointer(llm))
    llama_cpp.llama_memory_seq_rm(memory, 0, start, -1)
    llm.n_tokens = start
    total = 0.0
    batch = Batch(llm.n_batch)
    try:
        for begin in range(start, len(tokens), batch.capacity):
            chunk = tokens[begin : begin + batch.capacity]
            scored = []
            for offset, token in enumerate(chunk):
                pos = begin + offset
                wanted = first_scored <= pos < len(tokens) - 1
                index = batch.add(token, pos, 0, wanted)
                if wanted:
                    scored.append((index, tokens[pos + 1]))
            batch.decode(llama_internals.context_pointer(llm))
            total += sum(token_log_probability(llm, i, target) for i, target in scored)
            llm.input_ids[begin : begin + len(chunk)] = chunk
            llm.n_tokens = begin + len(chunk)
    finally:
        batch.free()
        llama_internals.mark_logits_stale(llm)
    return total / len(reply)
