"""The second model family, Gemma 3 270M (a pretrained base model, Q4_K_M, 253 MB): what differs
from the default, and one real digest of a corpus paper (issue 24).

What differs: its GGUF has no chat template (the plain User:/Assistant: format is used, with its
next-turn headers as stop strings), its tokenizer is another (262k pieces, BOS required), and 5 of
its 6 layers attend through a 512-token sliding window, which prefix reuse and parallel
sequences must respect. The model is fetched once per machine (conftest.real_model). A base model
writes little Japanese: the digest test checks that the pipeline holds, not the translations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPUS, requires_corpus

from localdigest import extract, models
from localdigest.backend import GenerationOptions, Message
from localdigest.backends.llama import LlamaBackend
from localdigest.cli import cli
from localdigest.generate import checks
from localdigest.paths import templates_dir

pytestmark = pytest.mark.slow

GEMMA = models.load_registry()["gemma-3-270m"]
# Over 1000 tokens: the paper prefix reaches well past the 512-token window.
PAPER = " ".join(
    f"Sentence {i}: we propose method {i} for reading papers and it improves accuracy by {i}.{i} "
    "points." for i in range(40)
)  # fmt: skip
GREEDY = GenerationOptions(max_tokens=16, temperature=0.0)


def ask(task: str, paper: str = PAPER) -> list[Message]:
    return [Message("system", "Answer briefly."), Message("user", f"{paper}\n\n{task}")]


@pytest.fixture(scope="module")
def gemma(gemma_model_path: Path) -> Iterator[LlamaBackend]:
    with LlamaBackend(gemma_model_path, entry=GEMMA, n_ctx=4096, parallel=4) as backend:
        yield backend


def test_gemma_runs_on_what_its_own_gguf_says(gemma: LlamaBackend) -> None:
    info = gemma.info
    assert (info.architecture, info.sha256) == ("gemma3", GEMMA.sha256)
    assert (info.n_ctx_train, info.n_ctx) == (32768, 4096)
    assert (info.params["chat_template"], info.params["sliding_window"]) == ("plain", 512)
    assert gemma.format_prompt([Message("system", "S"), Message("user", "U")]) == (
        "S\n\nUser:\nU\n\nAssistant:\n"
    )
    tokens, bos = gemma.prompt_tokens([Message("user", "U")]), gemma._llm.token_bos()
    assert tokens[0] == bos and tokens.count(bos) == 1  # its tokenizer asks for one BOS
    japanese = "本研究では、新しい手法を提案する。"
    assert gemma.detokenize(gemma.tokenize(japanese)) == japanese
    assert gemma.count_tokens(japanese) < len(japanese)


def test_a_reply_ends_where_the_base_model_begins_the_next_turn(gemma: LlamaBackend) -> None:
    chat = [Message("user", "What is two plus two?"), Message("assistant", "Four."),
            Message("user", "What is three plus three?")]  # fmt: skip
    completion = gemma.chat(chat, GenerationOptions(max_tokens=48, temperature=0.0))
    assert "User:" not in completion.text and "Assistant:" not in completion.text
    many = gemma.chat_many([chat, chat[:1]], GenerationOptions(max_tokens=48, temperature=0.0))
    assert all("User:" not in c.text and "Assistant:" not in c.text for c in many)


def test_prefix_reuse_across_the_sliding_window_answers_as_a_fresh_context(
    gemma_model_path: Path,
) -> None:
    """Measured (issue 24): with llama.cpp's small window cache, a prefix reused far behind the
    cache's last position had lost the cells its window needs: the reply's score moved by 0.05
    and the answer changed. One sequence, as --parallel 1 runs: more sequences enlarge that
    cache and hid the loss."""
    half = ask("Task: what does sentence 3 propose?", PAPER[: len(PAPER) // 2])
    ahead = ask("Task: what does sentence 30 propose?")
    with LlamaBackend(gemma_model_path, entry=GEMMA, n_ctx=4096, parallel=1) as sequential:
        sequential.chat(ahead, GREEDY)  # the cache runs far past the half paper
        reused = sequential.chat(half, GREEDY)
        sequential.chat(ahead, GREEDY)
        warm = sequential.score([(half, reused.text)])
    assert reused.stats.evaluated_tokens < 20 < 512 < reused.stats.prompt_tokens
    with LlamaBackend(gemma_model_path, entry=GEMMA, n_ctx=4096, parallel=1) as fresh:
        cold = fresh.score([(half, reused.text)])  # nothing cached yet
        assert warm == pytest.approx(cold, abs=0.01)
        assert_greedy(fresh, half, reused.text)


def test_parallel_sequences_across_the_sliding_window_answer_as_one_at_a_time(
    gemma: LlamaBackend, gemma_model_path: Path
) -> None:
    prompts = [ask(f"Task: what does sentence {n} propose?") for n in (2, 17, 33)]
    together = gemma.chat_many(prompts, GREEDY)
    assert gemma.info.params["parallel"] == 4  # not switched off for the sliding window
    assert together[1].stats.evaluated_tokens < together[1].stats.prompt_tokens // 10
    with LlamaBackend(gemma_model_path, entry=GEMMA, n_ctx=4096, parallel=1) as alone:
        for messages, completion in zip(prompts, together, strict=True):
            assert_greedy(alone, messages, completion.text)


def assert_greedy(backend: LlamaBackend, messages: list[Message], reply: str) -> None:
    """`reply` is the backend's greedy answer, or one it finds as probable: where two tokens
    nearly tie ('method 0' at -0.634, 'method 1' at -0.628), batched kernels may round the
    other way (parallel.py)."""
    greedy = backend.chat(messages, GREEDY).text
    if reply != greedy:
        (got, best) = backend.score([(messages, reply), (messages, greedy)])
        assert got == pytest.approx(best, abs=0.02), (reply, greedy)


@requires_corpus
def test_a_corpus_paper_is_digested_with_every_stage_and_no_prompt_text(
    gemma_model_path: Path, tmp_path: Path
) -> None:
    """A later-version PDF (v2), so its 発行日 comes from the arXiv id (issue 24, item 5)."""
    pdf = CORPUS / "papers" / "1706.08606v2_cognitive-psychology-shape-bias.pdf"
    out = tmp_path / "out"
    args = ["digest", str(pdf), "-o", str(out), "--model", "gemma-3-270m",
            "--models-dir", str(gemma_model_path.parent), "--threads", "1"]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for stage in ("abstract", "summary", "select", "qa", "done"):
        assert f"pdf: {stage}" in result.output
    (record,) = json.loads((out / "digest.json").read_text(encoding="utf-8"))["papers"]
    assert record["status"] == "ok" and record["provenance"]["model"] == "gemma-3-270m"
    assert {"abstract", "summary", "select"} <= set(record["stats"]["stages"])
    assert record["abstract_sentences"] and record["summary_ja"]
    for item in [*record["abstract_sentences"], *[{"text": q["answer"]} for q in record["qa"]]]:
        assert item["text"].strip()  # Japanese, or the marked English of the paper's sentence
    text = (out / "digest.txt").read_text(encoding="utf-8")
    assert "発行日:2017年06月（arXiv IDより）" in text and "最終更新日:2017年06月29日" in text
    assert_no_prompt_text(text, pdf)


def _ours(prompt: Path) -> str:
    """A prompt file's text, less the aspects' questions: a digest shows the Japanese ones, and
    a question the model words in English may say what their English says."""
    text = prompt.read_text(encoding="utf-8")
    if prompt.name != "aspects.tsv":
        return text
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    return "\n".join("\t".join(r[:1] + r[2:4] + r[5:6]) for r in rows)


def assert_no_prompt_text(digest: str, pdf: Path) -> None:
    """No run of six words of our prompts that the paper lacks, no run of their Japanese
    wording, and no turn header of the plain format."""
    paper = extract.paper(pdf)
    own = " ".join([paper.metadata.title or "", paper.metadata.abstract or "", paper.body_text])
    prompts = [_ours(p) for p in (templates_dir() / "prompts").iterdir()]
    body = digest.split("\n", 1)[1]  # after the intro, which is ours by design
    for prompt in prompts:
        assert not checks.instructions_echoed(body, prompt, own, run=6)
    assert not checks.prompt_echo(body, prompts)
    assert not re.search(r"(?m)^(User|Assistant):", digest)
