"""Generation pipeline against the fake backend: prompts, validation, retries, prefix reuse."""

from __future__ import annotations

import re

import pytest

from localdigest.backend import GenerationOptions, Message
from localdigest.backends.fake import FakeBackend
from localdigest.config import Settings
from localdigest.generate import PaperDigester, clean_answer, page_references, parse_qa
from localdigest.paper import ABSTRACT, BODY, REFERENCES, Block, Paper, PaperMetadata, Section
from localdigest.prompts import PromptSet

ABSTRACT_EN = (
    "We propose FooNet, a stochastic optimizer. On ImageNet it reaches 76.5% top-1 accuracy "
    "with 25 epochs, 12.3 points above SGD."
)


def make_paper() -> Paper:
    return Paper(
        path="foonet.pdf",
        sha256="a" * 64,
        page_count=4,
        metadata=PaperMetadata(title="FooNet", abstract=ABSTRACT_EN, authors=["A. Author"]),
        sections=[
            Section("Abstract", ABSTRACT, blocks=[Block(ABSTRACT_EN, 1)]),
            Section("Introduction", BODY, "1", blocks=[Block("Training is slow with SGD.", 1)]),
            Section(
                "Experiments",
                BODY,
                "4",
                blocks=[Block("FooNet reaches 76.5% on ImageNet after 25 epochs.", 3)],
            ),
            Section("References", REFERENCES, blocks=[Block("[1] Kingma. Adam. 2015.", 4)]),
        ],
    )


GOOD = {
    "abstract": "我々は確率的オプティマイザであるFooNetを提案する。ImageNetでは25エポックで"
    "top-1正解率76.5%に達し、SGDより12.3ポイント高い。",
    "summary": "確率的オプティマイザFooNetを提案し、ImageNetで25エポックにより"
    "top-1正解率76.5%を達成してSGDを12.3ポイント上回ることを示した研究である。",
    "answer": "FooNetはImageNetで25エポック学習し、top-1正解率76.5%を達成した。",
}


DISTINCT_QUESTIONS = [
    "FooNetはどんな課題を解決しようとしていますか？",
    "提案手法の更新則はどう設計されていますか？",
    "実験に使われたデータセットは何ですか？",
    "学習率やエポック数などの設定は？",
    "ImageNetでのtop-1正解率はいくつでしたか？",
    "SGDと比べてどれだけ改善しましたか？",
    "アブレーションで分かったことは？",
    "この手法の限界はどこにありますか？",
    "著者が挙げる今後の研究方向は？",
    "この研究は実務にどう役立ちますか？",
    "計算コストは従来法と比べてどうか？",
    "再現に必要なハイパーパラメータは？",
]


def qa_text(i: int, answer: str | None = None) -> str:
    return f"Q: {DISTINCT_QUESTIONS[i % len(DISTINCT_QUESTIONS)]}\nA: {answer or GOOD['answer']}"


def task_of(messages: list[Message]) -> str:
    return messages[-1].content.split("</paper>")[-1]


def responder(overrides: dict[str, list[str]] | None = None):
    """Answers by task kind; `overrides` queues bad outputs to exercise retries."""
    queues = {k: list(v) for k, v in (overrides or {}).items()}

    def respond(messages: list[Message], options: GenerationOptions) -> str:
        task = task_of(messages)
        kind = "abstract" if "英文:" in task else "qa" if "観点:" in task else "summary"
        if queues.get(kind):
            return queues[kind].pop(0)
        if kind == "qa":
            number = re.search(r"観点: \[(\d+)\]", task).group(1)
            return qa_text(int(number) - 1)
        return GOOD[kind]

    return respond


def digester(backend: FakeBackend, **settings) -> PaperDigester:
    return PaperDigester(Settings(**{"questions": 3, **settings}), backend=backend)


def test_digest_produces_all_outputs_with_pages_and_provenance():
    backend = FakeBackend(responder())
    record = digester(backend).digest(make_paper())
    assert record.abstract_ja == GOOD["abstract"]
    assert record.summary_ja == GOOD["summary"]
    assert len(record.qa) == 3
    assert all(p.answer == GOOD["answer"] and not p.warnings for p in record.qa)
    assert record.qa[0].pages == [3]  # the given passage (Experiments, p. 3) holds its details
    assert record.warnings == []
    assert any("References" in x for x in record.left_out)
    assert record.provenance["prompt_version"] and record.provenance["model"] == "fake"
    assert record.stats["total"]["generated_tokens"] > 0


def test_every_prompt_starts_with_the_shared_paper_prefix_and_reuses_it():
    backend = FakeBackend(responder())
    digester(backend).digest(make_paper())
    users = [call.messages[-1].content for call in backend.calls]
    prefix = users[0].split("\n\nタスク:")[0]
    assert "FooNet reaches 76.5%" in prefix and "[1] Kingma" not in prefix
    # the question's excerpt is moved out of the body, not evaluated twice
    body, excerpts = prefix.split("観点別の抜粋:")
    assert "FooNet reaches 76.5%" in excerpts and "FooNet reaches 76.5%" not in body
    assert "[1] 背景と課題" in excerpts
    assert (
        "[2] 提案手法: 提案する手法やモデルの仕組み・構成\n抜粋: なし（本文から答える）" in excerpts
    )
    assert all(u.startswith(prefix) for u in users)
    assert len(users) == 1 + 1 + 3  # one abstract chunk, the summary, three Q&A pairs
    record = digester(FakeBackend(responder())).digest(make_paper())
    total = record.stats["total"]
    assert total["evaluated_tokens"] < 0.5 * total["prompt_tokens"]


def test_glossary_terms_reach_the_prompt_only_when_used():
    backend = FakeBackend(responder())
    digester(backend).digest(make_paper())
    prompt = backend.calls[0].messages[-1].content
    assert "stochastic → 確率的" in prompt
    assert "reinforcement learning" not in prompt
    backend = FakeBackend(responder())
    digester(backend, glossary=False).digest(make_paper())
    assert "確率的" not in backend.calls[0].messages[-1].content


def test_bad_outputs_are_retried_with_new_seed_and_higher_temperature():
    backend = FakeBackend(responder({"qa": [qa_text(0, "This is English."), qa_text(0, "短い。")]}))
    record = digester(backend, questions=1).digest(make_paper())
    assert record.qa[0].answer == GOOD["answer"]
    qa_calls = [c for c in backend.calls if "観点:" in task_of(c.messages)]
    assert [c.options.seed for c in qa_calls] == [42, 43, 44]
    assert all(c.prompt.endswith("<|assistant|>\nQ:") for c in qa_calls)  # reply starts as Q:
    assert qa_calls[2].options.temperature > qa_calls[0].options.temperature
    assert record.stats["retries"]["qa"] == 2


def test_a_flawed_japanese_answer_is_kept_over_a_copied_english_one():
    vague_cut = "とても優れた手法であり、多くの場面で役に立つと述べられて"  # no detail, cut off
    english = "FooNet reaches 76.5% on ImageNet after 25 epochs."
    backend = FakeBackend(
        responder({"qa": [qa_text(0, vague_cut), qa_text(0, english)] + [qa_text(0, english)]})
    )
    record = digester(backend, questions=1, retries=2).digest(make_paper())
    assert record.qa[0].answer == vague_cut  # three lesser problems, kept with their warnings
    assert "answer carries no number or name from the paper" in record.qa[0].warnings


def test_persistent_failures_are_kept_with_warnings_not_dropped():
    english = "It is a stochastic optimizer for ImageNet."
    backend = FakeBackend(responder({"summary": [english] * 3}))
    record = digester(backend, retries=2).digest(make_paper())
    assert record.summary_ja == english
    assert any(w.startswith("summary:") and "Japanese" in w for w in record.warnings)


def test_an_abstract_chunk_left_in_english_is_shown_as_marked_original():
    echo = "日本語訳: We propose FooNet, a stochastic optimizer."
    backend = FakeBackend(responder({"abstract": [echo] * 3}))
    paper = make_paper()
    record = digester(backend, retries=2).digest(paper)
    assert record.abstract_ja == "［未翻訳の原文］" + " ".join(paper.metadata.abstract.split())
    assert any(w.startswith("概要:") and "not Japanese enough" in w for w in record.warnings)


def test_an_abstract_chunk_left_in_chinese_is_shown_as_marked_original():
    chinese = (
        "我们提出了FooNet，一种随机优化器。在ImageNet上达到76.5%，比SGD高12.3点，只用25个周期。"
    )
    backend = FakeBackend(responder({"abstract": [chinese] * 3}))
    paper = make_paper()
    record = digester(backend, retries=2).digest(paper)
    assert record.abstract_ja == "［未翻訳の原文］" + " ".join(paper.metadata.abstract.split())
    assert any("Chinese characters" in w for w in record.warnings)


def test_a_translation_stops_where_the_model_echoes_the_source_label():
    translation = GOOD["abstract"]
    backend = FakeBackend(responder({"abstract": [f"{translation} 英文: We propose FooNet."]}))
    record = digester(backend).digest(make_paper())
    assert record.abstract_ja == translation
    assert not [w for w in record.warnings if w.startswith("概要:")]


def test_translation_missing_numbers_is_flagged():
    short = "FooNetという確率的オプティマイザを提案し、ImageNetで良い結果を得た。"
    backend = FakeBackend(responder({"abstract": [short] * 3}))
    record = digester(backend, retries=2).digest(make_paper())
    assert any("numbers of the abstract missing" in w for w in record.warnings)


def test_abstract_is_translated_in_sentence_chunks_and_joined():
    long_abstract = " ".join(
        f"Sentence {i} states result {i}0 on ImageNet clearly." for i in range(12)
    )
    paper = make_paper()
    paper.metadata.abstract = long_abstract
    backend = FakeBackend(responder())
    digester(backend).digest(paper)
    chunks = [c for c in backend.calls if "英文:" in task_of(c.messages) and c.options.seed == 42]
    assert len(chunks) == 2  # 96 words in runs of at most 60
    assert "Sentence 0" in task_of(chunks[0].messages)
    assert "Sentence 11" in task_of(chunks[1].messages)


def test_duplicate_questions_are_redone():
    backend = FakeBackend(responder({"qa": [qa_text(0), qa_text(0)]}))
    paper = make_paper()
    long_blocks = [
        Block(f"Paragraph {i} describes the method in detail. " * 20, 2) for i in range(4)
    ]
    paper.sections.insert(2, Section("Method", BODY, "2", blocks=long_blocks))
    record = digester(backend, questions=2).digest(paper)
    questions = [p.question for p in record.qa]
    assert len(set(questions)) == 2
    assert all(not p.warnings for p in record.qa)
    first = [c for c in backend.calls if c.options.seed == 42 and "観点:" in task_of(c.messages)]
    retry = [c for c in backend.calls if c.options.seed == 43]
    assert len(retry) == 1  # only the duplicate is redone, asked for a less common detail
    assert "別の細部" not in task_of(first[1].messages)
    assert "（よくある点とは別の細部を尋ねる）" in task_of(retry[0].messages).splitlines()[-2]


def test_a_question_duplicated_through_every_retry_becomes_its_aspects_question():
    backend = FakeBackend(responder({"qa": [qa_text(0), qa_text(0), qa_text(0), qa_text(0)]}))
    record = digester(backend, questions=2, retries=2).digest(make_paper())
    aspect = PromptSet().aspects[1].label.split(":")[-1].strip()
    assert [p.question for p in record.qa] == [DISTINCT_QUESTIONS[0], f"{aspect}は何か？"]
    assert record.qa[1].answer == GOOD["answer"]  # the answer was written for this aspect
    assert record.qa[1].warnings == [f"question replaced by its aspect's: {DISTINCT_QUESTIONS[0]}"]


def test_empty_qa_output_is_retried_then_reported():
    backend = FakeBackend(responder({"qa": ["  "] * 3}))
    record = digester(backend, questions=1, retries=2).digest(make_paper())
    assert record.qa == []
    assert "Q&A: 0 of 1 pairs could be produced" in record.warnings


def test_an_answer_without_its_question_gets_the_aspects_question():
    backend = FakeBackend(responder({"qa": [GOOD["answer"]]}))
    record = digester(backend, questions=1).digest(make_paper())
    aspect = PromptSet().aspects[0].label.split(":")[-1].strip()
    assert record.qa[0].question == f"{aspect}は何か？"
    assert record.qa[0].answer == GOOD["answer"] and not record.qa[0].warnings


def test_parse_qa_accepts_label_variants():
    assert parse_qa("Q1: 何を使ったか？\nA1： ResNetを使った。") == (
        "何を使ったか？",
        "ResNetを使った。",
    )
    assert parse_qa("質問: 何？\n\n答え: これ。") == ("何？", "これ。")
    assert parse_qa("Q: 何？ A: これ。") == ("何？", "これ。")
    assert parse_qa("Q: 何？\nこれである。") == ("何？", "これである。")
    assert parse_qa("答えだけ。") is None


def test_page_references_pick_pages_with_the_answers_details():
    pages = {1: "Intro about SGD.", 3: "FooNet reaches 76.5% on ImageNet.", 5: "ImageNet again."}
    assert page_references("FooNetはImageNetで76.5%を達成。", pages) == [3]
    assert page_references("一般的な回答です。", pages) == []


def test_fingerprint_changes_with_options_and_prompts(tmp_path):
    base = digester(FakeBackend(responder())).fingerprint()
    assert base == digester(FakeBackend(responder())).fingerprint()
    assert base != digester(FakeBackend(responder()), questions=5).fingerprint()
    prompts = tmp_path / "prompts"
    from localdigest.paths import templates_dir

    prompts.mkdir()
    for source in (templates_dir() / "prompts").iterdir():
        (prompts / source.name).write_text(source.read_text(encoding="utf-8") + "\n")
    assert (
        base["prompt_version"]
        != digester(FakeBackend(responder()), prompts=str(prompts)).fingerprint()["prompt_version"]
    )


def test_stage_callback_reports_each_stage():
    stages = []
    digester(FakeBackend(responder())).digest(make_paper(), lambda s, info: stages.append(s))
    assert stages == ["abstract", "summary", "qa"]


def test_long_paper_gets_notes_for_sections_that_do_not_fit():
    paper = make_paper()
    filler = " ".join(["word"] * 400)
    paper.sections.insert(2, Section("Related Work", BODY, "2", blocks=[Block(filler, 2)]))
    backend = FakeBackend(responder())
    record = digester(backend, paper_tokens=300).digest(paper)
    note_calls = [c for c in backend.calls if "<section>" in c.messages[-1].content]
    assert len(note_calls) == 1
    assert "要点メモ" in backend.calls[-1].messages[-1].content
    assert record.stats["stages"]["notes"]["generated_tokens"] > 0


@pytest.mark.parametrize("questions", [1, 10, 12])
def test_question_count_is_honoured(questions):
    record = digester(FakeBackend(responder()), questions=questions).digest(make_paper())
    assert len(record.qa) == questions


def test_clean_answer_drops_label_echo_and_unfinished_sentence():
    question = "FooNetの精度は？"
    assert clean_answer("A: FooNetの精度は？ 76.5%である。", question, False) == "76.5%である。"
    assert clean_answer("76.5%である。さらに途中で", question, True) == "76.5%である。"


def test_chinese_drift_is_retried():
    drift = "我们提出FooNet，这是ImageNetで25エポック学習し76.5%に達した手法である。"
    backend = FakeBackend(responder({"qa": [qa_text(0, drift)]}))
    record = digester(backend, questions=1).digest(make_paper())
    assert record.qa[0].answer == GOOD["answer"]


def test_clean_answer_stops_at_a_second_pair_and_caps_sentences():
    question = "精度は？"
    assert clean_answer("76.5%である。 Q: 次は？ A: 別の答え。", question, False) == "76.5%である。"
    long = "一。二。三。四。五。"
    assert clean_answer(long, question, False) == "一。二。三。四。"


def test_clean_answer_drops_copied_page_marks():
    assert (
        clean_answer("結果は91.2%である。 [p.3] 次の文。", "精度は？", False)
        == "結果は91.2%である。次の文。"
    )


def test_clean_answer_drops_prompt_echo_markup_and_copied_english():
    question = "精度は？"
    assert clean_answer("**91.2%**である。 抜粋: [p.3] We achieve", question, False) == (
        "91.2%である。"
    )
    heading = "91.2%である。[3] 手法の詳細: 提案手法の具体的な構成要素 91.2%である。"
    assert clean_answer(heading, question, False) == "91.2%である。"
    twice = "ResNet-50を使う。精度は91.2%である。ResNet-50を使う。"
    assert clean_answer(twice, question, False) == "ResNet-50を使う。精度は91.2%である。"
    assert clean_answer("文献[12]の手法: ResNet-50である。", question, False) == (
        "文献[12]の手法: ResNet-50である。"
    )
    copied = "91.2%である。For our first pilot investigation, we follow the pipeline."
    assert clean_answer(copied, question, False) == "91.2%である。"
    assert clean_answer("ResNet-50 reaches 91.2%.", question, False) == "ResNet-50 reaches 91.2%."


def test_what_is_not_a_question_becomes_the_aspects_question():
    from localdigest.generate import as_question

    aspect = "背景と課題: この研究が解決しようとしている問題と、その動機"
    plain = "この研究が解決しようとしている問題と、その動機は何か？"
    for question in ("FooNetの精度は？", "FooNetは何を示したか", "規模について教えてください。"):
        assert as_question(question, aspect) == question
    for not_a_question in (
        "",
        aspect,
        "この研究が解決しようとしている問題と、その動機",
        "データセットのサイズが比較される",
        "今後の課題についての質問を1つ作り、「観点別の抜粋」の同じ番号の抜粋に基づいて答えを書いてください。",
    ):
        assert as_question(not_a_question, aspect) == plain


def test_answer_without_a_detail_from_the_paper_is_retried():
    vague = "とても優れた手法であり、多くの場面で役に立つと述べられている。"
    backend = FakeBackend(responder({"qa": [qa_text(0, vague)]}))
    record = digester(backend, questions=1).digest(make_paper())
    assert record.qa[0].answer == GOOD["answer"]
    assert record.stats["retries"]["qa"] == 1
    assert record.stats["retry_reasons"]["qa: answer carries no number or name from the paper"] == 1


def test_sentences_with_numbers_not_in_the_paper_are_cut():
    two = "FooNetはImageNetで25エポック学習した。正解率は88.8%である。"
    backend = FakeBackend(responder({"qa": [qa_text(0, two)]}))
    record = digester(backend, questions=1).digest(make_paper())
    assert record.qa[0].answer == "FooNetはImageNetで25エポック学習した。"
    assert not record.stats["retries"].get("qa")


def test_answer_with_a_number_not_in_the_paper_is_retried():
    invented = "FooNetはImageNetで25エポック学習し、top-1正解率88.8%を達成した。"
    backend = FakeBackend(responder({"qa": [qa_text(0, invented)]}))
    record = digester(backend, questions=1).digest(make_paper())
    assert record.qa[0].answer == GOOD["answer"]
