"""Standard Japanese renderings of common ML/NLP terms, injected only where a paper uses them.

Why: small models garble technical terms into broken katakana ("ストーリストリック" for
"stochastic"); giving the standard rendering in the prompt steers them to the usual term.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from localdigest.paths import DATA_DIR

GLOSSARY_FILE = DATA_DIR / "glossary_ja.tsv"


def version() -> str:
    """sha256 of the glossary file: part of the record key, as the prompts' version is."""
    return hashlib.sha256(GLOSSARY_FILE.read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def load() -> tuple[tuple[str, str], ...]:
    rows = []
    for line in GLOSSARY_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            english, japanese = line.split("\t")
            rows.append((english.strip(), japanese.strip()))
    return tuple(rows)


def terms_in(text: str, limit: int = 30) -> list[tuple[str, str]]:
    """Glossary entries whose English term occurs in text, most frequent first.

    A longer term that matches hides the shorter ones it contains ("stochastic gradient descent"
    over "gradient descent"), so the prompt does not carry redundant entries.
    """
    lowered = text.lower()
    counts: dict[str, int] = {}
    for english, _ in load():
        pattern = r"(?<![a-z])" + re.escape(english.lower()) + r"s?(?![a-z])"
        hits = len(re.findall(pattern, lowered))
        if hits:
            counts[english] = hits
    kept = [e for e in counts if not any(e != o and e.lower() in o.lower() for o in counts)]
    kept.sort(key=lambda e: (-counts[e], e))
    table = dict(load())
    return [(e, table[e]) for e in kept[:limit]]
