"""Generate a paper's Japanese digest: 概要, one-line summary and Q&A, each checkable.

The stages, in the order they run: translate (translate.py) the abstract sentence by sentence;
summarise in one English sentence and translate it; choose (select.py) the paper's own sentences
that answer each question aspect; answer by translating them. tasks.py runs every model call
with checks (checks.py) and retries; digester.py chains the stages for one paper.

This face imports none of them, so `localdigest.generate.checks` (which `localdigest eval` and
render read) loads without the generation stack: import `generate.digester.PaperDigester`.
"""
