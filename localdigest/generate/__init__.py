"""Generate a paper's Japanese digest: 概要, one-line summary and Q&A, each checkable.

The stages, in the order they run: translate (translate.py) the abstract sentence by sentence;
summarise in one English sentence and translate it; choose (select.py) the paper's own sentences
that answer each question aspect; answer by translating them. tasks.py runs every model call
with checks (checks.py) and retries; digester.py chains the stages for one paper.
"""

from localdigest.generate.digester import PaperDigester
from localdigest.generate.tasks import StageLog

__all__ = ["PaperDigester", "StageLog"]
