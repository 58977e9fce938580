"""Translate English sentences of a paper into Japanese, one sentence per chat.

Why one sentence and no paper: with the whole paper in its context the small model leaked the
prompt into the 概要, pasted English in and inverted meanings; alone with one sentence (and a
few fixed examples, always the same, so the prefix is evaluated once) it translates what it is
given.

Greedy, then scored (issue 22): each sentence is translated at temperature 0 and again only for
an objective failure. The model's own probability of the pair, forward (the Japanese given the
translation prompt) plus channel (the English source given the Japanese under the read-back
prompt), chooses among attempts and decides what is shown: below `min_score` the reader gets
the English sentence behind a mark, and the record keeps the Japanese attempt and its score.
That score separated renderings a strict reader judged wrong from the rest where our surface
checks could not. Each sentence is translated once per paper, however many stages use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from localdigest import glossary, textcheck
from localdigest.backend import Completion, Message
from localdigest.generate import checks
from localdigest.generate.tasks import Attempt, TaskRunner, first_paragraph
from localdigest.prompts import PromptSet
from localdigest.record import SentencePair

TOKENS_PER_WORD = 4  # Japanese output tokens per English source word, with room to spare
# No repetition penalty on the greedy try: llama.cpp's penalty covers the last 64 tokens, the
# source sentence included, and pushes the model off the source's names and numbers. On 62
# abstract sentences of 11 corpus papers outside issue 22's reported set (blind judges), wrong
# renderings fell from 0.29 to 0.24, faithful rose from 0.15 to 0.18 (paired: 10 better, 5
# worse). A loop is an objective failure, retried with the penalty.
FIRST_REPEAT_PENALTY = 1.0


@dataclass
class Translator:
    """Sentence-by-sentence translation of one paper with the prompts of a PromptSet."""

    prompts: PromptSet
    runner: TaskRunner
    use_glossary: bool = True
    min_score: float = -math.inf
    key_terms: Sequence[glossary.Term] = ()  # the paper's own terms, one rendering per digest
    _done: dict[str, SentencePair] = field(default_factory=dict)

    @cached_property
    def _prefix(self) -> list[Message]:
        """System prompt and worked examples: the same for every sentence of every paper."""
        messages = [Message("system", self.prompts.render("translate_system.j2"))]
        for english, japanese in self.prompts.translation_examples:
            messages.append(Message("user", self._task(english, ())))
            messages.append(Message("assistant", japanese))
        return messages

    @cached_property
    def _prompt_texts(self) -> list[str]:
        """Our own wording, which must never appear in a translation."""
        return [m.content for m in self._prefix if m.role != "user"]

    def _terms(self, sentence: str) -> list[glossary.Term]:
        found = glossary.terms_in(sentence) if self.use_glossary else []
        lowered = sentence.lower()
        return found + [
            t for t in self.key_terms if t.english.lower() in lowered and t not in found
        ]

    def _task(self, sentence: str, terms: Sequence[glossary.Term]) -> str:
        numbers = [  # where the model confuses the scale: 70M, 235 000 (not 30,871)
            (written, textcheck.japanese_number(value))
            for value, written in textcheck.magnitudes(sentence).items()
            if value >= 1e4 and (not written.replace(",", "").isdigit() or value % 1000 == 0)
        ]
        return self.prompts.render(
            "translate.j2", sentence=sentence, glossary=terms, numbers=numbers,
            question=sentence.endswith("?"),
        )  # fmt: skip

    def _chat(self, sentence: str) -> list[Message]:
        return [*self._prefix, Message("user", self._task(sentence, self._terms(sentence)))]

    def translate(self, sentences: Sequence[str], stage: str) -> list[SentencePair]:
        """Each sentence's translation, in order: Japanese, or the marked English where no
        attempt scored `min_score` or passed the objective checks."""
        new = [s for s in dict.fromkeys(sentences) if s not in self._done]
        if new:
            chats = [self._chat(s) for s in new]

            def check(i: int, completion: Completion) -> Attempt:
                text = checks.repair_scales(new[i], first_paragraph(completion.text))
                truncated = completion.finish_reason == "length"
                found = checks.translation_problems(new[i], text, truncated, self._prompt_texts)
                as_generated = text == " ".join(completion.text.split())
                return Attempt(text, found, log_probability=completion.log_probability
                               if as_generated else None)  # fmt: skip

            def choose(i: int, attempts: list[Attempt]) -> Attempt:
                fewest = min(checks.objective_count(a.problems) for a in attempts)
                least = [a for a in attempts if checks.objective_count(a.problems) == fewest]
                if len(least) > 1:
                    self._score([(new[i], chats[i], a) for a in least])
                return max(least, key=lambda a: a.extra)  # the earliest of equal scores

            max_tokens = 32 + TOKENS_PER_WORD * max(len(s.split()) for s in new)
            chosen = self.runner.run(
                stage, chats, check, max_tokens, choose=choose,
                first_repeat_penalty=FIRST_REPEAT_PENALTY,
            )  # fmt: skip
            self._score([(s, c, a) for s, c, a in zip(new, chats, chosen, strict=True)])
            for sentence, attempt in zip(new, chosen, strict=True):
                self._done[sentence] = self._pair(sentence, attempt)
        return [
            replace(p, warnings=list(p.warnings)) for p in map(self._done.__getitem__, sentences)
        ]

    def _score(self, items: list[tuple[str, list[Message], Attempt]]) -> None:
        """Sets each attempt's score (`extra`): forward + channel mean log-probability. The
        forward one is read while generating where the backend did; the rest are scored by
        forced decoding, forward ones first, then channel ones, so each batch reuses its
        shared prompt prefix."""
        todo = [(s, chat, a) for s, chat, a in items if a.extra is None]
        for _, _, attempt in todo:
            attempt.extra = -math.inf  # no Japanese to score
        todo = [(s, chat, a) for s, chat, a in todo if a.text.strip()]
        if not todo:
            return
        reader = Message("system", self.prompts.render("read_back_system.j2"))
        unread = [(chat, a) for _, chat, a in todo if a.log_probability is None]
        for (_, attempt), value in zip(
            unread, self.runner.score("score", [(chat, a.text) for chat, a in unread]), strict=True
        ):
            attempt.log_probability = value
        forward = [a.log_probability or 0.0 for _, _, a in todo]
        channel = self.runner.score(
            "score", [([reader, Message("user", a.text)], s) for s, _, a in todo]
        )
        for (_, _, attempt), f, c in zip(todo, forward, channel, strict=True):
            attempt.extra = round(f + c, 4)

    def _pair(self, source: str, attempt: Attempt) -> SentencePair:
        score = attempt.extra if attempt.extra is not None else -math.inf
        kept = score if math.isfinite(score) else None
        doubtful = checks.objective_count(attempt.problems) or score < self.min_score
        if doubtful or not attempt.text:
            return SentencePair(source, source, attempt.problems, True, attempt.text, kept)
        return SentencePair(source, attempt.text, attempt.problems, score=kept)
