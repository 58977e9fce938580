"""The defect checks on Japanese output: each names a defect a strict reader found (issue 14)."""

from __future__ import annotations

import pytest

from localdigest import textcheck
from localdigest.extract.layout import join_spans
from localdigest.generate import checks
from localdigest.record import Problem

SOURCE = (
    "We show that sparse attention reduces the cost by 35% on WMT14 with a 6-layer Transformer."
)
GOOD = "6層のTransformerを用いたWMT14において、スパースな注意機構がコストを35%削減することを示す。"


def test_a_faithful_translation_has_no_problems():
    assert checks.translation_problems(SOURCE, GOOD, truncated=False) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("英文: " + GOOD, "prompt echoed: 英文:"),
        ("英語のAbstractを日本語に翻訳すると、以下の通りです。" + GOOD, "prompt echoed"),
        ("We show that sparse attention reduces the cost by 35% on WMT14.", "not Japanese"),
        ("6層のTransformerでWMT14のコストを35%削減する。the cost is reduced", "English copied"),
        (
            "6層のTransformerを用いたWMT14において、seemingly注意機構がコストを35%削減する。",
            "garbled",
        ),
        ("6层的Transformer在WMT14上，稀疏注意力将成本降低了35%。", "Chinese"),
        (
            "6層のTransformerを用いたWMT14において、コンферエンスが35%削減する。",
            "Cyrillic or Hangul",
        ),
        (
            "Transformerを用いたWMT14において、スパースな注意機構がコストを削減することを示す。",
            "missing: 35",
        ),
        (
            "6層のTransformerを用いたWMT14において、コストを35%削減し、精度は12.5%上がる。",
            "not in the source: 12.5",
        ),
        (
            "6層のTransformerを用いたWMT14において、疎な注意機構がコストを35%削減することを示す。",
            "glossary term not used: sparse",
        ),
        ("コストを35%削減する。" * 4, "repeats itself"),
    ],
)
def test_each_defect_is_found(text, problem):
    found = checks.translation_problems(SOURCE, text, truncated=False)
    assert any(problem in str(p) for p in found), found


def test_a_number_whose_scale_changed_is_caught():
    source = "We use 70M training videos (5.24 million hours) with 30,871 labels."
    right = "7000万本の訓練動画（524万時間）と30,871個のラベルを用いる。"
    kept = "70Mの訓練動画（5.24 million時間）と30,871個のラベルを用いる。"
    wrong = "70万の訓練動画（5.24万時間）と30,871個のラベルを用いる。"
    assert checks.wrong_scales(source, right) == checks.wrong_scales(source, kept) == []
    assert checks.wrong_scales(source, wrong) == ["70M", "5.24 million"]
    assert checks.translation_problems(source, right, truncated=False) == []
    assert "not in the source: 3億" in " ".join(
        map(
            str,
            checks.translation_problems(source, right.replace("7000万", "3億"), truncated=False),
        )
    )


def test_written_out_large_numbers_are_compared_by_value_too():
    source = "It contains 1000 paragraphs of 235 languages, totaling in 235 000 paragraphs."
    assert (
        checks.translation_problems(source, "235言語の1000段落、合計23.5万段落を含む。", False)
        == []
    )
    wrong = checks.translation_problems(source, "235言語の1000段落、合計235万段落を含む。", False)
    assert Problem("number scale changed", "235 000") in wrong


def test_prompt_echo_finds_the_prompts_own_japanese_wording():
    prompt = "訳文だけを出力し、要約や省略をせず、すべての文を訳してください。"
    assert checks.prompt_echo("要約や省略をせず、すべての文を訳す。" + GOOD, [prompt])
    assert not checks.prompt_echo(GOOD, [prompt])


def test_chinese_is_what_cp932_cannot_encode_plus_known_chinese_words():
    assert textcheck.chinese_characters("每一篇の句子を拉丁形式で書く") == [
        "每",
        "每一",
        "句子",
        "拉丁",
    ]
    assert textcheck.chinese_characters("誤差逆伝播法と畳み込み層で学習する") == []


def test_answer_details_must_be_in_its_cited_sentences():
    cited = ["FooNet reaches 76.5% top-1 accuracy on ImageNet."]
    assert checks.details_not_in("FooNetはImageNetで76.5%に達した。", cited) == []
    assert checks.details_not_in("FooNetはCIFAR-10で81.2%に達した。", cited) == ["81.2", "CIFAR-10"]


def test_names_in_plural_and_hyphenated_metrics_are_not_false_alarms():
    source = "We train ResNet-50 on 8 GPUs and report top-1 accuracy."
    text = "8基のGPUでResNet-50を訓練し、top-1正解率を報告する。"
    assert checks.translation_problems(source, text, truncated=False) == []


def span(text: str, superscript: bool = False) -> dict:
    return {"text": text, "flags": 1 if superscript else 0}


def test_exponents_stay_exponents_and_footnote_marks_go():
    assert join_spans([span("after 10"), span("3", True), span("–10"), span("4", True)]) == (
        "after 10^3–10^4"
    )
    assert (
        join_spans([span("loss 2.4 · 10"), span("−", True), span("7", True)]) == "loss 2.4 · 10^−7"
    )
    assert join_spans([span("our model"), span("1", True), span(" works")]) == "our model works"
    assert join_spans([span("Ada Lovelace"), span("*", True), span(",")]) == "Ada Lovelace,"


def test_numbers_compare_like_with_like_across_exponent_notations():
    assert textcheck.numbers("10^3〜10^4ステップ") == textcheck.numbers("10³〜10⁴ステップ")
    assert "103" not in textcheck.numbers("10³ steps")


def test_a_number_written_at_the_wrong_scale_is_rewritten_from_its_source():
    from localdigest.generate.checks import repair_scales, translation_problems

    source = "TabLib holds 627 million tables from 70M videos (5.24 million hours), 867B tokens."
    wrong = "TabLibは7000万の動画（5.24万時間）から627億個の表と8670億トークンを持つ。"
    repaired = repair_scales(source, wrong)
    assert repaired == "TabLibは7000万の動画（524万時間）から6.27億個の表と8670億トークンを持つ。"
    assert not any("scale" in str(p) for p in translation_problems(source, repaired, False))
    ambiguous = "30K labels and 3K tests"  # two source numbers with the digits of 30万: left
    assert repair_scales(ambiguous, "30万のラベルと3千") == "30万のラベルと3千"


def test_katakana_unidic_does_not_know_is_invented_and_correct_loanwords_are_not():
    from localdigest import lexicon
    from localdigest.generate import checks

    correct = "アーキテクチャ、ベンチマーク、データセット、ファインチューニング、トランスフォーマー"
    assert lexicon.invented_words(correct) == []
    assert lexicon.invented_words("コンボレクションを使うアペンドリーア") == [
        "コンボレクション",
        "アペンドリーア",
    ]
    problems = checks.translation_problems("We use convolution.", "コンボレクションを使う。", False)
    assert any(str(p).startswith("invented word: コンボレクション") for p in problems)


def test_a_loanword_from_another_english_word_is_recorded_not_failed():
    from localdigest import lexicon
    from localdigest.generate import checks

    assert lexicon.foreign_origins("We parse the logs.", "ログをパースする。") == ["パース"]
    assert (
        lexicon.foreign_origins("We fine-tune a dataset.", "データセットをチューニングする。") == []
    )
    found = checks.translation_problems("We parse the logs.", "ログをパースする。", False)
    kinds = [checks.row(p.kind) for p in found]
    assert any(k.kind == "loanword of another word" and not k.objective for k in kinds)


def test_a_term_hint_copied_into_the_translation_is_an_echoed_prompt():
    copied = "最近の研究は表現を比較する。（層 = 層；ニューラルネットワーク = ニューラル"
    found = checks.translation_problems("Recent work compares representations.", copied, False)
    assert "prompt echoed: 層 = 層" in map(str, found)
    assert checks.hint_echo("We show that a = b holds.", "a = bが成り立つことを示す。") == ""


def _problem_kinds_in_the_package() -> set[str]:
    """Each kind the package's code writes as `Problem("kind", ...)`."""
    import ast
    from pathlib import Path

    import localdigest

    kinds = set()
    for path in Path(localdigest.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "Problem"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                kinds.add(node.args[0].value)
    return kinds


def test_every_kind_a_stage_or_a_migration_names_is_a_row_of_the_table():
    from localdigest import record

    rows = [c.kind for c in checks.CHECKS]
    assert len(rows) == len(set(rows))  # each kind once
    named = _problem_kinds_in_the_package() | set(record._SCHEMA_3_KINDS.values()) | {"other"}
    assert "no sentence number" in named
    assert named <= set(rows), named - set(rows)


def test_which_kinds_are_retried_shown_and_counted():
    """The table's decisions (issue 22): objective kinds are retried, a kind is shown only
    where its flag measurably marks wrong renderings."""
    objective = {c.kind for c in checks.CHECKS if c.objective}
    shown = {c.kind: c.label for c in checks.CHECKS if c.label}
    assert "loanword of another word" in shown and "loanword of another word" not in objective
    assert {"English copied", "numbers or names of the source missing"}.isdisjoint(shown)
    assert {"prompt echoed", "not Japanese", "invented word", "no sentence number"} <= objective
    assert checks.counted_columns() == ["leak", "english", "chinese", "garbled", "loop"]
    found = checks.problems_of(checks.Output("英文: 我们提出了这个方法。"))  # no source known
    assert [p.kind for p in found] == ["prompt echoed", "Chinese"]


@pytest.mark.parametrize(
    ("source", "text", "garbled"),
    [
        ("Memorization is the key.", "Memor化が鍵である。", ["Memor"]),
        ("See the appendix.", "アppendixを参照。", ["ppendix"]),
        ("What is the size of the S2ORC corpus?", "S2ORCコーパスのサイズは何か？", []),
        ("We fine-tune pre-trained models.", "pre-trainedモデルを微調整する。", []),
    ],
)
def test_a_garbled_term_is_latin_glued_to_japanese_that_is_no_word_of_the_source(
    source, text, garbled
):
    assert checks.glued_fragments(source, text) == garbled
