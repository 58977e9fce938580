#!/usr/bin/env python3
"""Show the judge of a sentence-level comparison what a reader sees: `sentences.py make` takes a
概要 sentence's `text`, which for a sentence shown as the marked English is the bare English
(the mark is added when rendering). This puts the mark (record.UNTRANSLATED) back in front of
those renderings in BLIND_DIR/blind.json, so the judge rates them "english", not "wrong".

Usage: mark_untranslated.py BLIND_DIR   (after ../shared/judge/sentences.py make BLIND_DIR ...)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from localdigest.record import UNTRANSLATED


def main(blind_dir: str) -> None:
    blind_path, key_path = Path(blind_dir) / "blind.json", Path(blind_dir) / "key.json"
    blind = json.loads(blind_path.read_text(encoding="utf-8"))
    key = {k["n"]: k["variants"] for k in json.loads(key_path.read_text(encoding="utf-8"))}
    marked = 0
    for item in blind:
        for variant in key[item["n"]].values():
            text = item["translations"][variant["label"]]
            if variant["untranslated"] and not text.startswith(UNTRANSLATED):
                item["translations"][variant["label"]] = UNTRANSLATED + text
                marked += 1
    blind_path.write_text(json.dumps(blind, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"marked {marked} renderings shown as the English original")


if __name__ == "__main__":
    main(*sys.argv[1:])
