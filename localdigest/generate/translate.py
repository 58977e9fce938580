"""Translate English sentences of a paper into Japanese, one sentence per chat.

Why one sentence and no paper: with the whole paper in its context the small model leaked the
prompt into the 概要, pasted English in and inverted meanings; alone with one sentence (and a
few fixed examples, always the same, so the prefix is evaluated once) it translates what it is
given. Each translation is checked against its source sentence (checks.translation_problems)
and retried; what still fails is kept with its warnings, or shown as the marked English where
it is not Japanese at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from localdigest import glossary, textcheck
from localdigest.backend import Completion, Message
from localdigest.generate import checks
from localdigest.generate.tasks import Attempt, TaskRunner, is_severe
from localdigest.prompts import PromptSet
from localdigest.record import SentencePair

TOKENS_PER_WORD = 4  # Japanese output tokens per English source word, with room to spare


@dataclass
class Translator:
    """Sentence-by-sentence translation with the translation prompts of a PromptSet."""

    prompts: PromptSet
    runner: TaskRunner
    use_glossary: bool = True

    @cached_property
    def _prefix(self) -> list[Message]:
        """System prompt and worked examples: the same for every sentence of every paper."""
        messages = [Message("system", self.prompts.render("translate_system.j2"))]
        for english, japanese in self.prompts.translation_examples:
            messages.append(Message("user", self._task(english)))
            messages.append(Message("assistant", japanese))
        return messages

    @cached_property
    def _prompt_texts(self) -> list[str]:
        """Our own wording, which must never appear in a translation."""
        return [m.content for m in self._prefix if m.role != "user"]

    def _task(self, sentence: str) -> str:
        terms = glossary.terms_in(sentence) if self.use_glossary else []
        numbers = [  # where the model confuses the scale: 70M, 235 000 (not 30,871)
            (written, textcheck.japanese_number(value))
            for value, written in textcheck.magnitudes(sentence).items()
            if value >= 1e4 and (not written.replace(",", "").isdigit() or value % 1000 == 0)
        ]
        return self.prompts.render(
            "translate.j2", sentence=sentence, glossary=terms, numbers=numbers
        )

    def translate(self, sentences: Sequence[str], stage: str) -> list[SentencePair]:
        """Each sentence's best checked translation, in order."""
        if not sentences:
            return []
        prompts = [[*self._prefix, Message("user", self._task(s))] for s in sentences]

        def check(i: int, completion: Completion) -> Attempt:
            text = _first_paragraph(completion.text)
            truncated = completion.finish_reason == "length"
            return Attempt(
                text,
                checks.translation_problems(sentences[i], text, truncated, self._prompt_texts),
            )

        longest = max(len(s.split()) for s in sentences)
        results = self.runner.run(stage, prompts, check, 32 + TOKENS_PER_WORD * longest)
        return [_translation(s, r) for s, r in zip(sentences, results, strict=True)]


def _first_paragraph(text: str) -> str:
    """The reply up to its first blank line: a small model sometimes adds notes after it."""
    return " ".join(text.strip().split("\n\n")[0].split())


def _translation(source: str, attempt: Attempt) -> SentencePair:
    if any(is_severe(p) for p in attempt.problems) and textcheck.japanese_share(attempt.text) < 0.5:
        return SentencePair(source, source, attempt.problems, untranslated=True)
    return SentencePair(source, attempt.text, attempt.problems)
