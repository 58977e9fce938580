"""Japanese word validity from UniDic (fugashi + unidic-lite): katakana terms the model invented.

Why a dictionary and not our own rules: the small model writes loanwords that are no Japanese
word (コンボレクション for "convolution") or a real word from another English word (パース, from
"purse", for "parse"). UniDic knows ~750k Japanese words with the English origin of each
loanword (lemma "パース-purse"); MeCab's analysis of a whole sentence also segments compounds
(ファイン + チューニング). On 9 invented words from outputs outside the corpus the two tests caught 8
and none of 12 correct loanwords (issue 22); on corpus outputs the origin test also took
homophones for inventions, so only an unknown word counts as an objective failure.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_KATAKANA_WORD = re.compile(r"^[\u30a1-\u30fa\u30fc]{3,}$")
_ORIGIN = re.compile(r"-([A-Za-z][A-Za-z ]*)$")
STEM = 3  # an origin's letters the source must hold: "tuning" for "fine-tune", "set" in "dataset"


@lru_cache(maxsize=1)
def _tagger() -> Any:
    import fugashi

    return fugashi.Tagger()


def invented_words(japanese: str) -> list[str]:
    """Katakana words of `japanese` that UniDic does not know (アペンドリーア, インプティション)."""
    found = [w.surface for w in _tagger()(japanese) if _KATAKANA_WORD.match(w.surface) and w.is_unk]
    return list(dict.fromkeys(found))


def foreign_origins(source: str, japanese: str) -> list[str]:
    """Known loanwords of `japanese` whose English origin is no word of the English `source`
    (パース-purse for "parse"). Not an objective failure: homophones pass for other words
    (カーネル-colonel for "kernel", トラック-truck for "soundtrack"), seen in corpus outputs."""
    english = source.lower()
    found = []
    for word in _tagger()(japanese):
        origin = _ORIGIN.search(str(word.feature.lemma or ""))
        if not _KATAKANA_WORD.match(word.surface) or word.is_unk or not origin:
            continue
        if not any(w.lower()[:STEM] in english for w in origin.group(1).split()):
            found.append(word.surface)
    return list(dict.fromkeys(found))
