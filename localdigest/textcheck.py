"""Pure text checks on generated Japanese, shared by generation (validation) and `eval` (scoring).

Why these heuristics: a 1.5B model's typical failures are answers in English, answers that
restate the question, truncated or empty output, near-duplicate questions, invented numbers and
technical terms garbled into katakana glued to Latin fragments ("非ステーションarity").
"""

from __future__ import annotations

import re
import unicodedata

_KANA_KANJI = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u30fc]")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'\-]*")
# Numbers worth checking: two or more digits, or a decimal. Single digits are too often
# spelled out in English ("three data sets") to be compared with the source.
_NUMBER = re.compile(r"(?<![\d.])\d[\d,]*(?:\.\d+)?|(?<![\d.])\.\d+")
_CHECKED_NUMBER = re.compile(r"^(?:\d{2,}|\d*\.\d+)$")
# Katakana directly followed by lowercase Latin ("ステーションarity"), or a short lowercase Latin
# fragment directly followed by katakana that does not start a normal word ("stoカスティック"),
# or Cyrillic or Hangul letters, which no Japanese term holds ("コンферエンス" in a demo run).
_BROKEN_MIXED = re.compile(
    r"[\u30a1-\u30fa\u30fc][a-z]{2,}|(?<![A-Za-z0-9_.\-])[a-z]{1,4}[\u30a1-\u30fa]"
    r"|[\u0400-\u04ff\uac00-\ud7af]+"
)
# Simplified-Chinese-only characters: Qwen models drift into Chinese mid-sentence ("我们提出").
_CHINESE_ONLY = re.compile(
    "[们这个为说从对时过还发现进动种样问间关开长让应该给经头实变难题结论计训练语词处图优评测显确认识师错误缀么吗机习创复杂网络阶级两呢态洁类构标务线维层输块试验码获积节术专业产质见观现视觉议设证读调资选择备传无]"
)
# ... and "和" joining two Latin names is Chinese "and" ("Skorokhodov和Burtsev"; Japanese: と).
# The second line: the Chinese words of machine learning writing whose characters Japanese also
# has (Japanese writes モデル, パラメータ, アルゴリズム, ベクトル, 正解率, 再現率, データ, 特徴,
# マルチモーダル, 合併, クロスモーダル, 及び, に基づく).
_CHINESE_WORDS = re.compile(
    "句子|拉丁|每一|提到|这|们|的话|什么|怎么|因为|所以|但是|可以|已经|没有|(?<=[A-Za-z.) ])和(?=\\s*[A-Z])"
    "|模型|参数|算法|向量|召回率|数据|特征|模態|合并|跨模|以及|基于"
)
_FOREIGN = re.compile(r"[\u0400-\u04ff\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]+")
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SUPERSCRIPTS = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+")
_NAME = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Za-z]*[A-Z0-9][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")
_SCALES = {
    "k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9,
    "trillion": 1e12, "千": 1e3, "万": 1e4, "億": 1e8, "兆": 1e12,
}  # fmt: skip
_MAGNITUDE = re.compile(
    r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*"
    r"(K|M|B|thousand|million|billion|trillion|千|万|億|兆)(?![A-Za-z])"
)
# Plain numbers of five digits or more, grouped by commas or spaces ("235 000", "30,871").
_LARGE_NUMBER = re.compile(r"(?<![\d.,])(?:\d{1,3}(?:[ ,]\d{3})+|\d{5,})(?![\d]|[.,]\d)")
DUPLICATE_SIMILARITY = 0.75  # bigram Jaccard: near-identical wording
FEW_TERMS = 3  # content terms below which a text repeats another only with the same terms
_SENTENCE_END = ("。", "．", ".", "！", "？", "!", "?", "」", "）", ")")


def normalize(text: str) -> str:
    """NFKC, lowercase, no whitespace or punctuation: for similarity comparisons."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


def japanese_share(text: str) -> float:
    """Share of Japanese among letters, counting each Latin word as one unit (technical terms ok)."""
    japanese = len(_KANA_KANJI.findall(text))
    latin_words = len(_LATIN_WORD.findall(text))
    total = japanese + latin_words
    return japanese / total if total else 0.0


def bigrams(text: str) -> set[str]:
    norm = normalize(text)
    return {norm[i : i + 2] for i in range(len(norm) - 1)} or ({norm} if norm else set())


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of character bigrams: robust for Japanese, which has no spaces."""
    x, y = bigrams(a), bigrams(b)
    return len(x & y) / len(x | y) if x and y else 0.0


_CONTENT_TERM = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff]{2,}|[\u30a1-\u30fa\u30fc]{2,}|[A-Za-z][A-Za-z0-9\-]+|\d+(?:\.\d+)?"
)


def content_terms(text: str) -> set[str]:
    """Kanji compounds, katakana words, Latin words and numbers: what carries information."""
    return {normalize(t) for t in _CONTENT_TERM.findall(unicodedata.normalize("NFKC", text))}


def restates(question: str, answer: str, min_new_terms: int = 4) -> bool:
    """True when the answer adds almost no content beyond the question's own words."""
    asked = normalize(question)
    new_terms = {t for t in content_terms(answer) if t and t not in asked}
    return len(new_terms) < min_new_terms


def same_terms(a: str, b: str) -> float:
    """Overlap of content terms (share of the shorter text's terms found in the other).

    Rewordings around the same nouns score high ("which CNN architectures were compared?" vs
    "which CNN architectures were used?"), questions about other facts of one method do not.
    A text with fewer than `FEW_TERMS` terms only matches the same terms: "TabLibとは何か？"
    does not repeat every other question about TabLib (issue 25: 10 of 72 questions worded
    from their answer were replaced as "asked twice", most by a one-name question).
    """
    x, y = content_terms(a), content_terms(b)
    if not x or not y:
        return 0.0
    if min(len(x), len(y)) < FEW_TERMS:
        return float(x == y)
    return len(x & y) / min(len(x), len(y))


def near_duplicates(
    texts: list[str], threshold: float = DUPLICATE_SIMILARITY
) -> list[tuple[int, int]]:
    """Index pairs of texts that are near-duplicates: same wording or the same content terms."""
    return [
        (i, j)
        for i in range(len(texts))
        for j in range(i + 1, len(texts))
        if similarity(texts[i], texts[j]) >= threshold or same_terms(texts[i], texts[j]) >= 0.75
    ]


def looks_truncated(text: str) -> bool:
    stripped = text.rstrip()
    return not stripped or not stripped.endswith(_SENTENCE_END)


def numbers(text: str) -> list[str]:
    """Checkable numbers in text, commas removed ("1,000" -> "1000"); an exponent stays apart
    from its base however it is written ("10^3", "10³" and "10^{3}" all give "10")."""
    plain = unicodedata.normalize("NFKC", explicit_exponents(text))
    found = (n.replace(",", "") for n in _NUMBER.findall(plain))
    return [n for n in found if _CHECKED_NUMBER.match(n)]


def explicit_exponents(text: str) -> str:
    """Superscript digits as ^digits ("10³" -> "10^3"), so NFKC does not glue them to the base."""
    return _SUPERSCRIPTS.sub(lambda m: "^" + m.group().translate(_SUPERSCRIPT_DIGITS), text)


def magnitudes(text: str) -> dict[float, str]:
    """Large numbers by value: with a scale word ("70M", "5.24 million", "30K"; "7000万", "524万",
    "2億") or written out ("235 000", "30,871") ({70000000.0: "70M"}). Why: the model keeps the
    digits and gets the scale wrong (70M -> 70万, 235 000 -> 235万, 5.24 million -> 5.24万)."""
    found = {}
    normal = unicodedata.normalize("NFKC", text)
    for match in _MAGNITUDE.finditer(normal):
        number, scale = match.groups()
        value = float(number.replace(",", "")) * _SCALES[scale.lower()]
        found[round(value, 3)] = match.group().strip()
    for match in _LARGE_NUMBER.finditer(_MAGNITUDE.sub(" ", normal)):
        found.setdefault(float(re.sub(r"[ ,]", "", match.group())), match.group())
    return found


def japanese_number(value: float) -> str:
    """A number as Japanese writes it with 万 and 億: 7e7 -> "7000万", 5.24e6 -> "524万"."""
    for unit, scale in (("兆", 1e12), ("億", 1e8), ("万", 1e4)):
        if value >= scale:
            return f"{round(value / scale, 6):g}{unit}"
    return f"{value:g}"


def names(text: str) -> list[str]:
    """Names written with capitals or digits inside the word (ResNet-50, BLEU, GPT-4, WiLI)."""
    return list(dict.fromkeys(_NAME.findall(text)))


def latin_terms(text: str, min_len: int = 3) -> set[str]:
    """Latin-script words (method, model, data-set names), lowercased."""
    return {w.lower() for w in _LATIN_WORD.findall(text) if len(w) >= min_len}


def chinese_characters(text: str) -> list[str]:
    """Chinese in Japanese text: ideographs that cp932 (Shift_JIS, JIS X 0208 and the usual
    extensions) cannot encode, Simplified-only characters, and Chinese words written with
    characters Japanese also has ("句子", "拉丁")."""
    found = [ch for ch in text if _is_ideograph(ch) and not _encodable(ch)]
    found += _CHINESE_ONLY.findall(text) + _CHINESE_WORDS.findall(text)
    return list(dict.fromkeys(found))


def foreign_letters(text: str) -> list[str]:
    """Cyrillic and Hangul letters: no Japanese word holds them ("コンферエンス")."""
    return list(dict.fromkeys(_FOREIGN.findall(text)))


def _is_ideograph(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or ch >= "\U00020000"


def _encodable(ch: str) -> bool:
    try:
        ch.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


def repetitive(text: str, window: int = 12, times: int = 3) -> bool:
    """True when some run of `window` characters occurs `times` times: a decoding loop."""
    compact = "".join(text.split())
    seen: dict[str, int] = {}
    for i in range(len(compact) - window + 1):
        chunk = compact[i : i + window]
        seen[chunk] = seen.get(chunk, 0) + 1
        if seen[chunk] >= times:
            return True
    return False


def cut_to_last_sentence(text: str) -> str:
    """Drop an unfinished trailing sentence (output stopped by the token limit)."""
    end = max(text.rfind(mark) for mark in ("。", "！", "？"))
    return text[: end + 1] if end > 0 else text


def broken_mixed_script(text: str) -> list[str]:
    """Katakana glued to Latin fragments: a sign of a garbled technical term."""
    return _BROKEN_MIXED.findall(text)


class SourceIndex:
    """The paper's numbers and Latin terms, for grounding checks of answers."""

    def __init__(self, source_text: str) -> None:
        norm = unicodedata.normalize("NFKC", source_text)
        self.numbers = set(numbers(norm))
        self.terms = latin_terms(norm)

    def concrete_details(self, answer: str, question: str) -> set[str]:
        """Numbers and Latin terms in the answer that come from the paper and not the question."""
        from_question = set(numbers(question)) | latin_terms(question)
        found = (set(numbers(answer)) & self.numbers) | (latin_terms(answer) & self.terms)
        return found - from_question

    def unknown_numbers(self, text: str) -> list[str]:
        """Numbers in text that never occur in the paper: likely hallucinated."""
        return [
            n
            for n in numbers(text)
            if n not in self.numbers and _strip_zeros(n) not in self.numbers
        ]


def _strip_zeros(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number
