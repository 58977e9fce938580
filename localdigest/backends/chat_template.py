"""How a model wants its chats written: the GGUF's own chat template, or a plain one where it has none.

Families differ here, and nothing about them is keyed on a model's name:

- the template comes from the GGUF (`tokenizer.chat_template`); a GGUF without one (a base
  model such as Gemma 3 270M) gets PLAIN_TEMPLATE, "User:" and "Assistant:" turns in plain
  text, which any pretrained model has seen, and stops where it would begin the next turn;
- a template without a system role (Gemma's raise an error, others drop the message) gets the
  system message folded into the first user turn, so the instructions are never lost;
- the reply ends where the GGUF says a generation ends (its end-of-generation tokens: eos,
  eot, `<end_of_turn>`, `<|im_end|>`, ...), which llama.cpp reads from the vocabulary and both
  decoding paths obey; the plain template adds its turn headers as stop strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localdigest.backend import Message

PLAIN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User:\n' + message['content'] + '\n\n' }}"
    "{% else %}{{ 'Assistant:\n' + message['content'] + '\n\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:\n' }}{% endif %}"
)
PLAIN_STOPS = ("\nUser:", "\nAssistant:")  # a base model goes on to write the next turn

_SYSTEM_PROBE, _USER_PROBE = "SYSTEM-PROBE-7f3a", "USER-PROBE-7f3a"


@dataclass(frozen=True)
class ChatFormat:
    """A model's prompt format: how messages become prompt text, and what ends a reply."""

    formatter: Any  # llama_cpp's Jinja2ChatFormatter
    folds_system: bool  # the template has no system role
    stops: tuple[str, ...]  # stop strings besides the GGUF's end-of-generation tokens

    def render(self, messages: list[Message]) -> str:
        """The prompt text for `messages`, ending where the reply begins."""
        if self.folds_system:
            messages = fold_system(messages)
        rendered = self.formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages]
        )
        return str(rendered.prompt)


def chat_format(template: str | None, bos_text: str, eos_text: str) -> ChatFormat:
    """The format for a GGUF's chat template (None: it has none, PLAIN_TEMPLATE is used).

    Raises:
        ValueError: the template cannot be parsed or cannot render a plain user turn.
    """
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    try:
        formatter = Jinja2ChatFormatter(
            template=template or PLAIN_TEMPLATE,
            bos_token=bos_text,
            eos_token=eos_text,
            add_generation_prompt=True,
        )
        formatter(messages=[{"role": "user", "content": _USER_PROBE}])
    except Exception as exc:  # jinja2 raises many types for a template it cannot read or run
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    stops = () if template else PLAIN_STOPS
    return ChatFormat(formatter, not _has_system_role(formatter), stops)


def _has_system_role(formatter: Any) -> bool:
    """Whether the template writes a system message: it neither refuses it nor drops it."""
    probe = [
        {"role": "system", "content": _SYSTEM_PROBE},
        {"role": "user", "content": _USER_PROBE},
    ]
    try:
        prompt = str(formatter(messages=probe).prompt)
    except Exception:  # Gemma's templates raise_exception('System role not supported')
        return False
    return _SYSTEM_PROBE in prompt


def fold_system(messages: list[Message]) -> list[Message]:
    """System messages put before the first user message's text, for a template without a
    system role; the other turns are kept in order."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    rest = [m for m in messages if m.role != "system"]
    if not system:
        return rest
    for i, message in enumerate(rest):
        if message.role == "user":
            folded = Message("user", f"{system}\n\n{message.content}")
            return [*rest[:i], folded, *rest[i + 1 :]]
    return [Message("user", system), *rest]
