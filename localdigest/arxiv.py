"""arXiv identifiers: the one place that knows what an arXiv id, stamp, URL and category look like.

Ids come in two styles: new (0704.0001, 2301.05217) and old (math/0211159, hep-th/9901001).
The PDF margin stamp, offline metadata files, input file names and the digests' links all go
through the functions here, so they agree on what counts as an id.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from localdigest.paths import DATA_DIR

_ID = r"(?:\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})"
_STAMP_RE = re.compile(
    rf"arXiv:\s*(?P<id>{_ID})(?:v(?P<version>\d+))?\s*"
    r"\[(?P<category>[A-Za-z\-]+(?:\.[A-Za-z\-]+)?)\]\s*"
    r"(?P<date>\d{1,2}\s+[A-Z][a-z]{2}\s+\d{4})"
)
_ID_RE = re.compile(rf"^(?:arXiv:)?(?P<id>{_ID})(?:v(?P<version>\d+))?$")
# Ids as they appear in file names: new style (1706.03762, 2401.12345v2), and old style with its
# slash dropped or written as an underscore (hep-th9901001.pdf, hep-th_9901001v2.pdf).
_NEW_ID_IN_NAME = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v(\d+))?(?!\d)")
_OLD_ID_IN_NAME = re.compile(r"(?<![a-z-])([a-z][a-z-]*)[_/]?(\d{7})(?:v(\d+))?(?!\d)")


@dataclass(frozen=True)
class Stamp:
    """What the arXiv margin stamp says: `arXiv:1706.03762v5 [cs.CL] 6 Dec 2017`."""

    arxiv_id: str
    version: int | None
    category: str
    date: str  # ISO YYYY-MM-DD: the date this version was submitted


def parse_stamp(text: str) -> Stamp | None:
    """The arXiv stamp in `text`, or None when there is none."""
    match = _STAMP_RE.search(text)
    if not match:
        return None
    version = match["version"]
    date = datetime.strptime(" ".join(match["date"].split()), "%d %b %Y").date().isoformat()
    return Stamp(match["id"], int(version) if version else None, match["category"], date)


def split_arxiv_id(raw: str) -> tuple[str, int | None] | None:
    """("1706.03762", 5) from "1706.03762v5", "arXiv:1706.03762v5" or an abs/pdf URL;
    None when what remains is not an arXiv id."""
    tail = raw.strip().rstrip("/")
    for marker in ("/abs/", "/pdf/"):
        if marker in tail:
            tail = tail.split(marker, 1)[1]
    tail = tail.removesuffix(".pdf")
    match = _ID_RE.match(tail)
    if not match:
        return None
    version = match["version"]
    return match["id"], int(version) if version else None


def arxiv_id_from_name(name: str) -> tuple[str, int | None] | None:
    """The arXiv id (and version) in a file name such as `1706.03762v5.pdf`, if there is one."""
    stem = Path(name).name
    match = _NEW_ID_IN_NAME.search(stem)
    if match:
        return match.group(1), int(match.group(2)) if match.group(2) else None
    match = _OLD_ID_IN_NAME.search(stem)
    if match and match.group(1) in _archives():
        version = int(match.group(3)) if match.group(3) else None
        return f"{match.group(1)}/{match.group(2)}", version
    return None


def month_of_id(arxiv_id: str) -> str | None:
    """The month an arXiv id was assigned, as ISO `YYYY-MM`: its first version's month.

    Both styles encode it: `1706.03762` and `hep-th/9901001` (YYMM, old-style years from 1991).
    """
    found = split_arxiv_id(arxiv_id)
    if found is None:
        return None
    digits = found[0].rsplit("/", 1)[-1]
    year, month = int(digits[:2]), int(digits[2:4])
    if not 1 <= month <= 12:
        return None
    century = 1900 if "/" in found[0] and year >= 91 else 2000
    return f"{century + year}-{month:02d}"


def arxiv_url(arxiv_id: str, version: int | None) -> str:
    """The PDF URL in the form the reference digest shows."""
    return f"http://arxiv.org/pdf/{arxiv_id}" + (f"v{version}" if version else "")


@lru_cache(maxsize=1)
def _category_names() -> dict[str, str]:
    with (DATA_DIR / "arxiv_categories.tsv").open(encoding="utf-8", newline="") as fh:
        return {row["code"]: row["name"] for row in csv.DictReader(fh, delimiter="\t")}


@lru_cache(maxsize=1)
def _archives() -> frozenset[str]:
    """arXiv archive names (hep-th, math, cs, ...): what may start an old-style id."""
    return frozenset(code.split(".", 1)[0] for code in _category_names())


def category_name(code: str) -> str:
    """The English name arXiv shows for a category code; unknown codes come back unchanged."""
    return _category_names().get(code, code)
