"""Reading a translation back into English, to see what the Japanese actually says.

Why: the checks see the surface of a translation (numbers, names, scripts, loops) but not a
clause left out or a claim changed, the errors a strict reader found most often. The model
reads Japanese better than it writes it, so its plain English reading of its own translation
(greedy, one sentence, no paper) shows what a reader of the Japanese is told; content words of
the source that the reading lacks point at what the translation lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from localdigest import textcheck
from localdigest.backend import Completion, Message
from localdigest.generate.tasks import Attempt, TaskRunner
from localdigest.prompts import PromptSet

MIN_COVERAGE = 0.5  # share of the source's content words its reading back must hold
STEM = 5  # letters that identify a word: "proposes" and "proposed" read alike
# Words that carry no claim of their own ("not" and "without" do: an inverted claim shows).
_STOP_WORDS = frozenset(
    re.findall(
        r"\w+",
        """a an the of and or but to in on at by for from with as into onto over under than
    then that this these those which who whom whose what when where while is are was were be been
    being has have had do does did can could may might will would shall should must no nor
    it its their there them they we our us you your he she his her also more most such both each
    other only very so all any some many much new one two three use used using show shows shown
    paper work approach propose proposed present""",
    )
)
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]*")


@dataclass
class Reading:
    """A translation read back into English, and the source's content words it lacks."""

    english: str
    missing: list[str]
    coverage: float

    @property
    def faithful(self) -> bool:
        return self.coverage >= MIN_COVERAGE


def content_words(text: str) -> dict[str, str]:
    """Stem -> first word with that stem, for the words that carry a sentence's content."""
    words: dict[str, str] = {}
    for word in _WORD.findall(text):
        lower = word.lower()
        if len(lower) > 2 and lower not in _STOP_WORDS:
            words.setdefault(lower[:STEM], word)
    for number in textcheck.numbers(text):
        words.setdefault(number, number)
    return words


def compare(source: str, english: str) -> Reading:
    wanted = content_words(source)
    found = content_words(english)
    missing = [word for stem, word in wanted.items() if stem not in found]
    coverage = 1 - len(missing) / len(wanted) if wanted else 1.0
    return Reading(english, missing, round(coverage, 2))


@dataclass
class ReadBack:
    """Reads Japanese sentences back into English with one batched, greedy model call."""

    prompts: PromptSet
    runner: TaskRunner

    def read(self, sources: Sequence[str], translations: Sequence[str]) -> list[Reading]:
        system = Message("system", self.prompts.render("read_back_system.j2"))
        chats = [[system, Message("user", text)] for text in translations]

        def check(i: int, completion: Completion) -> Attempt:
            return Attempt(" ".join(completion.text.strip().split("\n\n")[0].split()))

        longest = max((len(t) for t in translations), default=0)
        attempts = self.runner.run("read back", chats, check, 32 + longest, retries=0)
        return [compare(s, a.text) for s, a in zip(sources, attempts, strict=True)]
