"""Build a tiny llama-architecture GGUF for tests: real llama.cpp path, random weights, no download.

The vocabulary comes from a sentencepiece BPE model trained here on a little English and
Japanese text, with byte fallback so any text tokenizes. The GGUF carries a ChatML chat
template, so loading, tokenizing, templating, prefix reuse and statistics are all
exercised for real. The output is nonsense.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Gemma's (2 and 3) template: no system role (it refuses one), turns end with <end_of_turn>.
GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>"]
GEMMA_SPECIAL_TOKENS = ["<start_of_turn>", "<end_of_turn>"]
CONTEXT_LENGTH = 4096

_TRAINING_TEXT = """\
We propose a method for reading research papers and answering questions about them.
The model is evaluated on three benchmarks and improves accuracy by 4.2 percent.
Abstract: Large language models translate English papers into Japanese summaries.
{"question": "What is proposed?", "answer": "A method.", "page": 3, "ok": true}
Q1: What data is used? A1: Twenty arXiv papers with tables, figures and equations.
本研究では、論文を読み、その内容について日本語で質問に答える手法を提案する。
提案手法は三つのベンチマークで評価され、精度が向上した。概要と要約を生成する。
質問：何を提案しているか。回答：新しい手法である。数値は原文で確認してください。
"""

# sentencepiece piece types -> GGUF token types (llama.cpp's llama_token_type)
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6


def _train_tokenizer(vocab_size: int, special_tokens: list[str]) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    lines = _TRAINING_TEXT.splitlines() * 4
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        character_coverage=1.0,
        user_defined_symbols=special_tokens,
        split_digits=True,
        minloglevel=2,
    )
    return model.getvalue()


def _vocabulary(
    proto: bytes, special_tokens: list[str]
) -> tuple[list[str], list[float], list[int]]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_proto=proto)
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        tokens.append(piece)
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(_UNKNOWN)
        elif sp.is_byte(i):
            types.append(_BYTE)
        elif sp.is_control(i) or piece in special_tokens:
            types.append(_CONTROL)
        else:
            types.append(_NORMAL)
    return tokens, scores, types


def build_tiny_model(
    path: Path,
    *,
    vocab_size: int = 400,
    n_embd: int = 64,
    n_head: int = 4,
    n_layer: int = 2,
    n_ff: int = 128,
    seed: int = 0,
    chat_template: str = CHATML_TEMPLATE,
) -> Path:
    """Write a small random-weight llama GGUF with a chat template (ChatML, or GEMMA_TEMPLATE
    with Gemma's turn tokens and its end of text) to `path`."""
    import gguf

    gemma = chat_template == GEMMA_TEMPLATE
    special = GEMMA_SPECIAL_TOKENS if gemma else SPECIAL_TOKENS
    tokens, scores, types = _vocabulary(_train_tokenizer(vocab_size, special), special)
    n_vocab = len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("localdigest-tiny-test")
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(tokens.index("<unk>"))
    writer.add_bos_token_id(tokens.index("<s>"))
    # ChatML: a turn ends the reply; Gemma: end of text, and llama.cpp knows <end_of_turn>
    writer.add_eos_token_id(tokens.index("</s>" if gemma else "<|im_end|>"))
    writer.add_add_bos_token(gemma)
    writer.add_chat_template(chat_template)

    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    writer.add_tensor("token_embd.weight", weights(n_vocab, n_embd))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", weights(n_vocab, n_embd))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weights(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weights(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weights(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weights(n_embd, n_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
