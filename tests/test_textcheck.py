from localdigest import textcheck


def test_japanese_share_counts_latin_words_as_units():
    assert textcheck.japanese_share("DeepSeekMath 7Bモデルを微調整した") > 0.8
    assert textcheck.japanese_share("This answer is in English only") == 0.0
    assert textcheck.japanese_share("") == 0.0


def test_restates_flags_answer_without_new_content():
    question = (
        "パフォーマンスという点で、あなたの方法は様々な強力なベースラインと比較してどうですか?"
    )
    restating = (
        "私たちの手法は、さまざまな強力なベースラインと比較して、優れていることが示されています。"
    )
    grounded = (
        "CIFAR-10でResNet-18を用い、ベースラインのSGDより正解率が2.3ポイント高い95.1%を達成した。"
    )
    assert textcheck.restates(question, restating)
    assert not textcheck.restates(question, grounded)


def test_near_duplicates_finds_reworded_question():
    questions = [
        "提案手法の仕組みは何ですか？",
        "提案手法の仕組みは何でしょうか？",
        "データセットは何か？",
    ]
    assert textcheck.near_duplicates(questions) == [(0, 1)]


def test_a_question_naming_only_the_papers_subject_does_not_repeat_every_question_about_it():
    questions = ["TabLibは何ですか？", "TabLibのデータセットの制限は何ですか？", "TabLibとは何か？"]
    assert textcheck.near_duplicates(questions) == [(0, 2)]


def test_numbers_skip_single_digits_and_commas():
    assert textcheck.numbers("精度は46.3%、1,000件、3つ、2017年") == ["46.3", "1000", "2017"]


def test_broken_mixed_script_spots_garbled_terms_not_normal_compounds():
    assert textcheck.broken_mixed_script("非ステーションarityの問題") == ["ンarity"]
    assert textcheck.broken_mixed_script("とstoカスティック") == ["stoカ"]
    assert textcheck.broken_mixed_script("短いコンферエンス論文") == ["фер"]
    assert textcheck.broken_mixed_script("lm-evalライブラリとTransformerモデル") == []


def test_source_index_grounding():
    index = textcheck.SourceIndex("Adam reaches 46.3% on miniF2F with 1000 samples.")
    assert index.concrete_details("miniF2Fで46.3%を達成した。", "精度は？") == {"minif2f", "46.3"}
    assert index.concrete_details("miniF2Fで達成した。", "miniF2Fの精度は？") == set()
    assert index.unknown_numbers("52.1%と46.30%") == ["52.1"]


def test_looks_truncated():
    assert textcheck.looks_truncated("手法は二段階で構成され")
    assert not textcheck.looks_truncated("手法は二段階で構成される。")


def test_chinese_characters_flag_simplified_only():
    assert textcheck.chinese_characters("我们提出localdigest，这是") == ["们", "这"]
    assert textcheck.chinese_characters("学習率やエポック数などの設定は？") == []
    assert textcheck.chinese_characters("多模态融合层を用いる") == ["态", "层"]
    assert textcheck.chinese_characters("多モーダル融合層の状態を観察する") == []


def test_chinese_and_between_latin_names_is_flagged_japanese_wa_is_not():
    assert textcheck.chinese_characters("Skorokhodov和Burtsev, 2019の研究") == ["和"]
    assert textcheck.chinese_characters("AdamとSGDの和訳は平和的である") == []
    assert textcheck.chinese_characters("文章中提到の名前は？") == ["提到"]


def test_chinese_machine_learning_words_are_flagged_their_japanese_forms_are_not():
    found = textcheck.chinese_characters(
        "多模態設定で跨模型 Transformerを合并し、参数と数据を用いる"
    )
    assert found == ["模態", "跨模", "合并", "参数", "数据"]
    assert textcheck.chinese_characters("基于特征的算法と向量以及召回率") == [
        "基于", "特征", "算法", "向量", "以及", "召回率"
    ]  # fmt: skip
    japanese = "マルチモーダル設定でモデルを合併し、パラメータとデータに基づく特徴ベクトルの正解率"
    assert textcheck.chinese_characters(japanese + "、再現率、アルゴリズム、模倣、論文本文") == []


def test_cut_to_last_sentence():
    assert textcheck.cut_to_last_sentence("一文目。二文目は途中で") == "一文目。"
    assert textcheck.cut_to_last_sentence("句点なし") == "句点なし"
