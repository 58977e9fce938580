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
