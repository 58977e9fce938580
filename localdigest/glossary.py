"""Standard Japanese renderings of common ML/NLP terms: shown with a sentence that uses them,
and checked in its translation.

Why: small models garble technical terms into invented katakana ("コンボレクション" for
"convolution"); the standard rendering beside the sentence steers them to the usual term, and a
translation that uses neither it, an accepted alternative nor the English term is flagged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from localdigest.paths import DATA_DIR

GLOSSARY_FILE = DATA_DIR / "glossary_ja.tsv"


def version() -> str:
    """sha256 of the glossary file: part of the record key, as the prompts' version is."""
    return hashlib.sha256(GLOSSARY_FILE.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Term:
    english: str
    renderings: tuple[str, ...]  # the standard one first, then accepted alternatives

    @property
    def japanese(self) -> str:
        return self.renderings[0]

    def rendered_in(self, text: str) -> bool:
        """The translation keeps the English term or uses an accepted rendering."""
        return self.english.lower() in text.lower() or any(r in text for r in self.renderings)


@lru_cache(maxsize=1)
def load() -> tuple[Term, ...]:
    rows = []
    for line in GLOSSARY_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            english, japanese = line.split("\t")
            rows.append(Term(english.strip(), tuple(j.strip() for j in japanese.split("|"))))
    return tuple(rows)


def terms_in(text: str, limit: int = 30) -> list[Term]:
    """Glossary terms whose English occurs in text, most frequent first.

    A longer term that matches hides the shorter ones it contains ("stochastic gradient descent"
    over "gradient descent"), so the prompt does not carry redundant entries.
    """
    lowered = text.lower()
    counts: dict[Term, int] = {}
    for term in load():
        pattern = r"(?<![a-z])" + re.escape(term.english.lower()) + r"s?(?![a-z])"
        hits = len(re.findall(pattern, lowered))
        if hits:
            counts[term] = hits
    kept = [
        t
        for t in counts
        if not any(t != o and t.english.lower() in o.english.lower() for o in counts)
    ]
    kept.sort(key=lambda t: (-counts[t], t.english))
    return kept[:limit]


def lookup(english: str) -> Term | None:
    return _by_english().get(english.lower())


@lru_cache(maxsize=1)
def _by_english() -> dict[str, Term]:
    return {t.english.lower(): t for t in load()}


KEY_TERM_LIMIT = 8
_PHRASE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]*")
# Words that neither start nor end a term: "of the", "we show", "in this".
_EDGE_WORDS = frozenset(
    re.findall(
        r"\w+",
        """a an the of and or but to in on at by for from with as into via than that this these
    those we our us it its their is are was were be been can could may might will would which
    who how what when where while both each such very more most less all any some many much not
    no new novel show shows shown propose proposed present paper work approach study using based
    also other one two three first second large small high low well between across over under
    without through different several various given often""",
    )
)


def key_terms(title: str, abstract: str) -> list[Term]:
    """The paper's own multi-word terms, each rendered one way in the whole digest.

    A phrase of two or three words that the title holds and the abstract repeats, or that the
    abstract uses three times, is a term of this paper. Its glossary rendering where there is
    one, else its English spelling: a small model otherwise writes one central term in several
    invented forms in one digest (issue 22)."""
    text = f"{title}\n{abstract}".lower()
    counts: dict[str, int] = {}
    for words in (_PHRASE_WORD.findall(line) for line in re.split(r"[.;:,()\n]", text)):
        for n in (3, 2):
            for i in range(len(words) - n + 1):
                phrase = words[i : i + n]
                if phrase[0] in _EDGE_WORDS or phrase[-1] in _EDGE_WORDS:
                    continue
                key = " ".join(phrase)
                counts[key] = counts.get(key, 0) + 1
    in_title = title.lower()
    chosen = [p for p, c in counts.items() if c >= 3 or (p in in_title and c >= 2)]
    chosen = [p for p in chosen if not any(p != o and p in o for o in chosen)]
    chosen.sort(key=lambda p: (-counts[p], p))
    return [lookup(p) or Term(p, (p,)) for p in chosen[:KEY_TERM_LIMIT]]
