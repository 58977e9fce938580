"""What can be wrong with a Japanese output, checked against its English source.

Every check names a defect a strict reader found in our digests (issue 14): the prompt's own
wording in the output, English pasted in, Chinese or Cyrillic inside Japanese, loops, numbers
or names lost or invented, glossary terms replaced by invented katakana. `localdigest eval`
runs the same checks on stored records.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from localdigest import glossary, lexicon, textcheck
from localdigest.record import Problem

MIN_JAPANESE_SHARE = 0.6
ECHO_CHARS = 10  # a run this long of the prompt's own (Japanese) wording is an echo
# Labels and task words of our prompts, wherever they appear in an output.
_LABELS = re.compile(
    r"(?:英文|日本語訳?|原文|訳文|翻訳文|タスク|観点|抜粋|Translation|English|Japanese|Sentence)\s*[:：]"
    r"|以下の通り|翻訳すると|訳してください|出力してください"
)
# English words that are never technical terms: a sentence holding them was copied, not written.
_FUNCTION_WORDS = frozenset(
    [
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "are",
        "was",
        "were",
        "that",
        "this",
        "these",
        "with",
        "for",
        "from",
        "by",
        "as",
        "on",
        "we",
        "our",
        "which",
        "be",
        "been",
        "has",
        "have",
        "it",
        "its",
        "their",
        "can",
        "not",
        "but",
        "or",
        "an",
        "at",
        "than",
        "into",
        "such",
        "also",
        "more",
        "most",
    ]
)
_LATIN_RUN = re.compile(r"[A-Za-z][A-Za-z'\-]*(?:\s+[A-Za-z][A-Za-z'\-]*){3,}")


def english_copied(text: str) -> str:
    """English prose inside Japanese: a run of four Latin words, or an English function word."""
    run = _LATIN_RUN.search(text)
    if run and any(w.lower() in _FUNCTION_WORDS for w in run.group().split()):
        return run.group()
    words = [w for w in re.findall(r"[A-Za-z]+", text) if w.lower() in _FUNCTION_WORDS]
    return " ".join(dict.fromkeys(words)) if len(words) >= 2 else ""


def prompt_echo(text: str, prompt_texts: Iterable[str]) -> str:
    """A label of our prompts, or a run of the prompt's own Japanese wording, in the output."""
    label = _LABELS.search(text)
    if label:
        return label.group()
    compact = _compact(text)
    for prompt in prompt_texts:
        source = _compact(prompt)
        for i in range(len(compact) - ECHO_CHARS + 1):
            chunk = compact[i : i + ECHO_CHARS]
            if _has_kana(chunk) and chunk in source:
                return chunk
    return ""


def instructions_echoed(text: str, instructions: str, source: str, run: int = 4) -> str:
    """A run of `run` words of our own English instructions that the source does not have
    ('abstract of the paper'): a base model goes on writing the prompt instead of answering."""

    def runs(part: str) -> set[str]:
        words = re.findall(r"[a-z0-9]+", part.lower())
        return {" ".join(words[i : i + run]) for i in range(len(words) - run + 1)}

    echoed = (runs(text) & runs(instructions)) - runs(source)
    return min(echoed) if echoed else ""


_HINT = re.compile(r"[^\s=＝;；()（）]{1,30}\s*[=＝]\s*[^\s=＝;；()（）]{1,30}")


def hint_echo(source: str, text: str) -> str:
    """A term or number hint of the translation prompt ("層 = 層；…") copied into the output:
    an "X = Y" the source sentence does not have."""
    found = _HINT.search(text)
    return found.group() if found and "=" not in source else ""


def _compact(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _has_kana(text: str) -> bool:
    return any("\u3040" <= ch <= "\u30ff" for ch in text)


def english_words_left(source: str, text: str) -> list[str]:
    """Ordinary English words of the source pasted into the Japanese ("seemingly離散な"):
    lowercase words that are neither names nor glossary terms. Names stay in English by policy."""
    known = {word for t in glossary.load() for word in t.english.lower().split()}
    pasted = re.findall(r"(?<![A-Za-z0-9\-])[a-z]{3,}(?![A-Za-z0-9\-])", text)
    return [w for w in dict.fromkeys(pasted) if w in _words(source) and w not in known]


def glued_fragments(source: str, text: str) -> list[str]:
    """Latin letters glued to Japanese that are no word of the source ("Memor化", "stoカ")."""
    glued = re.findall(  # the whole name before the Japanese: "S2ORCの" is no "ORC"
        r"(?<![A-Za-z0-9-])([A-Za-z0-9-]*[A-Za-z]{2})[\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff]",
        text,
    )
    glued += re.findall(r"[\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff]([a-z]{2,})(?![A-Za-z])", text)
    words = _words(source)
    return [g for g in dict.fromkeys(glued) if g.lower() not in words]


def _words(text: str) -> set[str]:
    """Lowercased words of an English text, with the parts of hyphenated words and singulars."""
    words = {w.lower() for w in re.findall(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*", text)}
    words |= {part for w in words for part in w.split("-")}
    return words | {w[:-1] for w in words if w.endswith("s")}


def details_missing(source: str, text: str) -> list[str]:
    """Numbers and names of the English source that the Japanese does not keep."""
    kept = set(textcheck.numbers(_plain(text)))
    numbers = sorted(set(textcheck.numbers(_plain(source))) - kept)
    return numbers + [n for n in textcheck.names(source) if not _name_kept(n, text)]


def _name_kept(name: str, text: str) -> bool:
    singular = name[:-1] if name.endswith("s") else name
    if singular.lower() in text.lower():
        return True
    term = glossary.lookup(name)
    return bool(term and term.rendered_in(text))


def wrong_scales(source: str, text: str) -> list[str]:
    """Numbers with a scale word in the source (70M, 5.24 million) whose value the translation
    does not state: neither kept as written nor converted right (7000万, 524万)."""
    stated = textcheck.magnitudes(text)
    return [
        written
        for value, written in textcheck.magnitudes(source).items()
        if not any(abs(value - v) <= 1e-6 * value for v in stated)
    ]


def repair_scales(source: str, text: str) -> str:
    """The translation with each number the model wrote at a wrong scale written right: its
    digits are the source number's and its value is not ("627 million" as 627億 becomes
    6.27億). The model keeps digits but not scales; the value is known from the source."""
    wanted = textcheck.magnitudes(source)
    for value, written in textcheck.magnitudes(text).items():
        if any(abs(value - v) <= 1e-6 * v for v in wanted):
            continue
        same_digits = [v for v, w in wanted.items() if _digits(w) == _digits(written)]
        if len(same_digits) == 1 and not any(
            abs(same_digits[0] - v) <= 1e-6 * v for v in textcheck.magnitudes(text)
        ):
            text = text.replace(written, textcheck.japanese_number(same_digits[0]))
    return text


def _digits(written: str) -> str:
    return re.sub(r"\D", "", written).strip("0")


def details_not_in(text: str, sources: Sequence[str]) -> list[str]:
    """Numbers and names in the output that none of its source sentences hold: invented."""
    source = " ".join(sources)
    index = textcheck.SourceIndex(_plain(source))
    stated = textcheck.magnitudes(source)
    scaled = [
        written
        for value, written in textcheck.magnitudes(text).items()
        if not any(abs(value - v) <= 1e-6 * value for v in stated)
        and f"{value:g}" not in index.numbers
    ]
    names = [n for n in textcheck.names(text) if n.lower() not in source.lower()]
    return index.unknown_numbers(_plain(text)) + scaled + names


def _plain(text: str) -> str:
    """The text without names (their digits are checked as names: CIFAR-10, GPT-4) and without
    numbers with a scale word (checked by value: 70M is 7000万)."""
    for name in textcheck.names(text):
        text = text.replace(name, " ")
    for written in textcheck.magnitudes(text).values():
        text = text.replace(written, " ")
    return text


def glossary_misses(source: str, text: str) -> list[str]:
    """Glossary terms of the source rendered neither as the glossary says nor in English."""
    return [
        f"{t.english} → {t.japanese}" for t in glossary.terms_in(source) if not t.rendered_in(text)
    ]


def translation_problems(
    source: str, text: str, truncated: bool, prompt_texts: Sequence[str] = ()
) -> list[Problem]:
    """Everything a reader would hold against this sentence's translation."""
    if not text.strip():
        return [Problem("empty")]
    return problems_of(Output(text, source, truncated, tuple(prompt_texts)))


def problems_of(output: Output) -> list[Problem]:
    """What each check of the table finds in an output, in the table's order; the checks that
    compare with the English source run only where the output has one."""
    found = []
    for check in CHECKS:
        if check.find and (output.source is not None or not check.needs_source):
            what = check.find(output)
            if what:
                found.append(Problem(check.kind, _detail(what)))
    return found


def _detail(found: Found) -> str:
    if isinstance(found, bool):
        return ""
    return found if isinstance(found, str) else ", ".join(found)


def _share(text: str) -> str:
    share = textcheck.japanese_share(text)
    return f"share {share:.2f}" if share < MIN_JAPANESE_SHARE else ""


def _echo(output: Output) -> str:
    echo = prompt_echo(output.text, output.prompt_texts)
    return echo or (hint_echo(output.source, output.text) if output.source is not None else "")


def _chinese(text: str) -> str:
    return "".join(textcheck.chinese_characters(text))


def _truncated(output: Output) -> bool:
    return output.truncated or textcheck.looks_truncated(output.text)


def _much_shorter(source: str, text: str) -> str:
    return "parts left out?" if len(text) < 0.6 * len(source.split()) else ""


@dataclass(frozen=True)
class Output:
    """What a check reads: a Japanese output and, for a translation, the English it renders."""

    text: str
    source: str | None = None
    truncated: bool = False  # the model stopped at its token limit
    prompt_texts: tuple[str, ...] = ()  # our own wording, never to appear in an output


Found = str | list[str] | bool  # what a check found; empty or False: nothing


@dataclass(frozen=True)
class Check:
    """One kind of problem, and what the pipeline does about it.

    `find` reads an output (None: a stage reports the kind while parsing a reply). `objective`:
    a failure anyone can see without reading the source, never a judgement call; such an
    output is generated again (tasks.TaskRunner), and what still has one is shown as the marked
    English. `label`: the Japanese flag a reader is shown beside the item, or None where the
    kind stays in the record only. `counted`: the `localdigest eval` column counting it.
    """

    kind: str
    find: Callable[[Output], Found] | None = None
    objective: bool = False
    label: str | None = None
    counted: str | None = None
    needs_source: bool = True  # compares with the English source: run on translations only


def _source(check: Callable[[str, str], Found]) -> Callable[[Output], Found]:
    return lambda output: check(output.source or "", output.text)


def _text(check: Callable[[str], Found]) -> Callable[[Output], Found]:
    return lambda output: check(output.text)


# Every check, once, in the order its problems are listed. A kind is shown to readers (has a
# label) only where reader verdicts measured that it marks renderings judged wrong at least
# twice as often as unflagged ones (issue 22, per-kind table in benchmarks/README.md,
# `scripts/flag_lift.py`); objective kinds are shown where an older record kept Japanese that
# has one (a new record shows such a rendering as the marked English instead).
# fmt: off
CHECKS: tuple[Check, ...] = (
    #     kind                          find                           objective label  counted
    Check("empty", None, True, "出力なし"),  # translate, tasks: nothing came back
    Check("prompt echoed", _echo, True, "指示文の混入", "leak", needs_source=False),
    Check("English words left", _source(english_words_left), counted="english"),
    Check("garbled term", _source(glued_fragments), True, "崩れた用語", "garbled"),
    Check("number scale changed", _source(wrong_scales)),
    Check("numbers or names of the source missing", _source(details_missing)),
    Check("numbers or names not in the source", _source(lambda s, t: details_not_in(t, [s]))),
    Check("glossary term not used", _source(glossary_misses)),
    Check("invented word", _text(lexicon.invented_words), True, "辞書にない造語"),
    # the one judgement-call kind measured to mark wrong renderings: wrong 0.44 of 16 against
    # 0.21 unflagged (2.1x) on 84 blind-judged sentences of 8 corpus papers
    Check("loanword of another word", _source(lexicon.foreign_origins), label="原文と異なる外来語"),
    Check("not Japanese", _text(_share), True, "英語のまま", "english", needs_source=False),
    Check("English copied", _text(english_copied), counted="english", needs_source=False),
    Check("Chinese", _text(_chinese), True, "中国語の混入", "chinese", needs_source=False),
    Check("Cyrillic or Hangul", _text(textcheck.foreign_letters), True, "外国文字の混入", "chinese",
          needs_source=False),
    Check("katakana glued to Latin", _text(textcheck.broken_mixed_script), True, "崩れた用語",
          "garbled", needs_source=False),
    Check("repeats itself", _text(textcheck.repetitive), True, "繰り返し", "loop", needs_source=False),
    Check("looks truncated", _truncated, True, "途中で切れている"),
    Check("much shorter than its source", _source(_much_shorter)),
    # reported by the stages that parse a model's English reply (digester, questions, select)
    Check("longer than one short sentence", objective=True),  # the English summary
    Check("numbers or names not in the abstract"),
    Check("not English", objective=True),
    Check("summary length"),  # its Japanese translation
    Check("summary replaced"),  # by the abstract's first sentence
    Check("not one question", objective=True),
    Check("question too long"),
    Check("numbers or names not in its sentence"),
    # worded again, else the aspect's own question is asked (issue 25)
    Check("question words not in its answer", objective=True),
    Check("asks for a number its sentence does not give", objective=True),
    Check("asks how a whole works", objective=True),
    # the generated sentence choice and its yes/no check, before issue 25 read P(yes)
    Check("no yes or no", objective=True),
    Check("no sentence number", objective=True),
    Check("sentence number out of range", objective=True),
    # only in records written before issue 22 (the read-back check), or of a kind schema 3
    # could not name (record._SCHEMA_3_KINDS)
    Check("meaning may differ"),
    Check("other"),
)
# fmt: on


def row(kind: str) -> Check:
    """The table's row for a kind (an unknown kind, in a hand-edited record, is kept only)."""
    return next((c for c in CHECKS if c.kind == kind), Check(kind))


def objective_count(problems: Iterable[Problem]) -> int:
    return sum(row(p.kind).objective for p in problems)


def shown_labels(problems: Iterable[Problem]) -> list[str]:
    """The Japanese labels a reader sees for these problems, once each, in order."""
    return [label for label in dict.fromkeys(row(p.kind).label for p in problems) if label]


def counted_columns() -> list[str]:
    """The columns of `localdigest eval`: those of checks every output gets first."""
    ordered = sorted(CHECKS, key=lambda c: c.needs_source)
    return [column for column in dict.fromkeys(c.counted for c in ordered) if column]
