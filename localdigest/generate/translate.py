"""Translate English sentences of a paper into Japanese, one sentence per chat.

Why one sentence and no paper: with the whole paper in its context the small model leaked the
prompt into the 概要, pasted English in and inverted meanings; alone with one sentence (and a
few fixed examples, always the same, so the prefix is evaluated once) it translates what it is
given. Each translation is checked against its source sentence (checks.translation_problems)
and retried; what still fails is kept with its warnings, or shown as the marked English where
it is not Japanese at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from localdigest import glossary, textcheck
from localdigest.backend import Completion, Message
from localdigest.generate import checks
from localdigest.generate.roundtrip import ReadBack, Reading
from localdigest.generate.tasks import Attempt, TaskRunner, is_severe, severity
from localdigest.prompts import PromptSet
from localdigest.record import SentencePair

TOKENS_PER_WORD = 4  # Japanese output tokens per English source word, with room to spare


@dataclass
class Translator:
    """Sentence-by-sentence translation with the translation prompts of a PromptSet."""

    prompts: PromptSet
    runner: TaskRunner
    use_glossary: bool = True
    read_back: bool = True

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

    def translate(
        self, sentences: Sequence[str], stage: str, *, read_back: bool = True
    ) -> list[SentencePair]:
        """Each sentence's best checked translation, in order; `read_back` also compares its
        English reading with the source (off for questions, which fall back to their own)."""
        if not sentences:
            return []
        prompts = [[*self._prefix, Message("user", self._task(s))] for s in sentences]

        def check(i: int, completion: Completion) -> Attempt:
            text = checks.repair_scales(sentences[i], _first_paragraph(completion.text))
            truncated = completion.finish_reason == "length"
            return Attempt(
                text,
                checks.translation_problems(sentences[i], text, truncated, self._prompt_texts),
            )

        longest = max(len(s.split()) for s in sentences)
        max_tokens = 32 + TOKENS_PER_WORD * longest
        results = self.runner.run(stage, prompts, check, max_tokens)
        if read_back and self.read_back:
            self._read_back(sentences, results, prompts, check, max_tokens, stage)
        return [_translation(s, r) for s, r in zip(sentences, results, strict=True)]

    def _read_back(
        self,
        sentences: Sequence[str],
        results: list[Attempt],
        prompts: list[list[Message]],
        check: Callable[[int, Completion], Attempt],
        max_tokens: int,
        stage: str,
    ) -> None:
        """Translations whose English reading lost part of the source are made once more; the
        better of the two is kept, and a loss that remains is a warning on it."""
        reader = ReadBack(self.prompts, self.runner)
        usable = [i for i, a in enumerate(results) if not _unusable(a)]
        readings = dict(
            zip(usable, self._readings(reader, sentences, results, usable), strict=True)
        )
        # A translation with defects has had all its retries; one without is tried again.
        lost = [i for i in usable if not readings[i].faithful and not results[i].problems]
        if lost and self.runner.settings.retries:
            again = self.runner.run(
                stage,
                [prompts[i] for i in lost],
                lambda j, completion: check(lost[j], completion),
                max_tokens,
                first_round=1,
            )
            redone = [lost[j] for j, a in enumerate(again) if not _unusable(a)]
            second = self._readings(
                reader, sentences, {lost[j]: a for j, a in enumerate(again)}, redone
            )
            for i, reading in zip(redone, second, strict=True):
                candidate = again[lost.index(i)]
                if _better(candidate, reading, results[i], readings[i]):
                    results[i], readings[i] = candidate, reading
        for i, reading in readings.items():
            if not reading.faithful:
                results[i].problems.append(
                    "meaning may differ from the source: read back, it lacks "
                    + ", ".join(reading.missing[:6])
                )

    @staticmethod
    def _readings(
        reader: ReadBack,
        sentences: Sequence[str],
        results: Mapping[int, Attempt] | Sequence[Attempt],
        indices: list[int],
    ) -> list[Reading]:
        if not indices:
            return []
        return reader.read([sentences[i] for i in indices], [results[i].text for i in indices])


def _unusable(attempt: Attempt) -> bool:
    """No Japanese worth reading back: empty, or severely wrong (English, another script)."""
    return not attempt.text or any(is_severe(p) for p in attempt.problems)


def _better(new: Attempt, reading: Reading, old: Attempt, old_reading: Reading) -> bool:
    """Fewer defects first; with as many, the one whose reading keeps more of the source."""
    a, b = severity(new.problems), severity(old.problems)
    return a < b or (a == b and reading.coverage > old_reading.coverage)


def _first_paragraph(text: str) -> str:
    """The reply up to its first blank line: a small model sometimes adds notes after it."""
    return " ".join(text.strip().split("\n\n")[0].split())


def _translation(source: str, attempt: Attempt) -> SentencePair:
    if any(is_severe(p) for p in attempt.problems) and textcheck.japanese_share(attempt.text) < 0.5:
        return SentencePair(source, source, attempt.problems, untranslated=True)
    return SentencePair(source, attempt.text, attempt.problems)
