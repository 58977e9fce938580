"""Every use of llama-cpp-python's private names, in one place, checked against the installed version.

`llama_cpp.Llama` offers no public way to: set model parameters it has no argument for, give its
context more than one sequence, sample one sequence of a batch, drop part of its KV cache, or
read a vocabulary without loading weights and a context. The backends need all five, so they reach into `Llama`'s private attributes and `llama_cpp._internals`
through the functions here and nowhere else. Such names change between releases without notice:
`check_compatible` looks for every one of them and says which is missing, in which version, and
which versions were tested (pinned in pyproject.toml; tests/test_llama_internals.py runs the
check and every function here against the installed version).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localdigest.errors import ModelError

if TYPE_CHECKING:
    import llama_cpp

TESTED_VERSIONS = ">=0.3.36,<0.4"  # the pin in pyproject.toml; 0.3.36 is the version tested

# The private names used here: methods on Llama's class and on llama_cpp._internals' classes,
# then attribute paths on a loaded Llama.
_LLAMA_METHODS = ("_init_sampler",)
_INTERNALS = {
    "LlamaContext": ("close", "kv_cache_seq_rm"),
    "LlamaModel": ("add_bos_token", "token_get_text", "token_bos", "token_eos", "close"),
}
_LLAMA_ATTRIBUTES = (
    "_model.vocab", "_ctx.ctx", "_stack", "_input_ids", "_is_recurrent", "_is_hybrid",
    "_requires_eval",
)  # fmt: skip
_MODEL_PARAM_FIELDS = ("use_extra_bufts",)


def check_compatible(llm: llama_cpp.Llama | None = None) -> None:
    """Refuse a llama-cpp-python that lacks a private name used here; with `llm`, also check
    the attributes a loaded model has.

    Raises:
        ModelError: which names are missing, the installed version and the tested range.
    """
    import llama_cpp
    from llama_cpp import _internals

    missing = [f"Llama.{n}" for n in _LLAMA_METHODS if not hasattr(llama_cpp.Llama, n)]
    for class_name, members in _INTERNALS.items():
        cls = getattr(_internals, class_name, None)
        missing += [f"_internals.{class_name}.{m}" for m in members if not hasattr(cls, m)]
    fields = {name for name, *_ in getattr(llama_cpp.llama_model_params, "_fields_", [])}
    missing += [f"llama_model_params.{f}" for f in _MODEL_PARAM_FIELDS if f not in fields]
    if llm is not None:
        missing += [f"Llama().{n}" for n in _LLAMA_ATTRIBUTES if not _has_path(llm, n)]
    if missing:
        raise ModelError(
            f"llama-cpp-python {llama_cpp.__version__} lacks what localdigest uses "
            f"({', '.join(missing)}); install a tested version: "
            f"pip install 'llama-cpp-python{TESTED_VERSIONS}'"
        )


def _has_path(obj: object, dotted: str) -> bool:
    for name in dotted.split("."):
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    return True


@contextlib.contextmanager
def model_params(**changes: Any) -> Iterator[None]:
    """Model parameters `Llama` offers no argument for, set while a `Llama` is constructed.

    Llama.__init__ starts from `llama_model_default_params()` and loads the model at once, so
    the defaults are changed for the construction only.
    """
    import llama_cpp.llama as llama_module

    defaults = llama_module.llama_cpp.llama_model_default_params
    llama_module.llama_cpp.llama_model_default_params = _changed_defaults(defaults, changes)
    try:
        yield
    finally:
        llama_module.llama_cpp.llama_model_default_params = defaults


def _changed_defaults(defaults: Any, changes: dict[str, Any]) -> Any:
    def changed() -> Any:
        params = defaults()
        for name, value in changes.items():
            setattr(params, name, value)
        return params

    return changed


def model_params_source(**changes: Any) -> str:
    """Python source that sets model parameters for every `Llama` a process makes afterwards:
    for running another checkout of localdigest (the benchmark's baseline) with the same ones."""
    assignments = "".join(f"    p.{name} = {value!r}\n" for name, value in changes.items())
    return (
        "import llama_cpp.llama as m\n"
        "defaults = m.llama_cpp.llama_model_default_params\n"
        f"def params():\n    p = defaults()\n{assignments}    return p\n"
        "m.llama_cpp.llama_model_default_params = params\n"
    )


def is_stateful(llm: llama_cpp.Llama) -> bool:
    """A recurrent or hybrid model: its state cannot be cut back or shared by sequences."""
    return bool(llm._is_recurrent or llm._is_hybrid)


def context_pointer(llm: llama_cpp.Llama) -> Any:
    """The `llama_context *` the low-level API (llama_decode, llama_get_memory) takes."""
    return llm._ctx.ctx


def context(llm: llama_cpp.Llama) -> Any:
    """The wrapped context a sampler samples from."""
    return llm._ctx


def vocab(llm: llama_cpp.Llama) -> Any:
    """The `llama_vocab *` (for llama_vocab_is_eog)."""
    return llm._model.vocab


def adds_bos(llm: llama_cpp.Llama) -> bool:
    """Whether the model's tokenizer wants a BOS token before a prompt."""
    return bool(llm._model.add_bos_token())


def model(llm: llama_cpp.Llama) -> Any:
    """The loaded model's wrapper (`_internals.LlamaModel`), as `vocabulary_only` gives one."""
    return llm._model


@contextlib.contextmanager
def vocabulary_only(path: Path) -> Iterator[Any]:
    """A GGUF's vocabulary and header, without weights or a context (llama.cpp's vocab_only,
    its logs kept quiet): what `models add` checks in a second.

    Raises:
        ValueError: llama.cpp cannot load the file (an architecture it does not know).
    """
    import llama_cpp
    from llama_cpp import _internals

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    loaded = _internals.LlamaModel(path_model=str(path), params=params, verbose=False)
    try:
        yield loaded
    finally:
        loaded.close()


def bos_eos_texts(loaded: Any) -> tuple[str, str]:
    """The BOS and EOS tokens' texts (`<bos>`, `<|im_end|>`) as a chat template writes them,
    "" where the vocabulary has none; `loaded` is `model(llm)` or `vocabulary_only`'s."""
    bos, eos = loaded.token_bos(), loaded.token_eos()
    return (
        str(loaded.token_get_text(bos)) if bos != -1 else "",
        str(loaded.token_get_text(eos)) if eos != -1 else "",
    )


def cached_tokens(llm: llama_cpp.Llama) -> list[int]:
    """The tokens the context holds, in order."""
    tokens: list[int] = llm._input_ids.tolist()  # the slice holding the evaluated tokens
    return tokens


def drop_cached_tokens(llm: llama_cpp.Llama, start: int) -> bool:
    """Drop every sequence's cells from position `start` on; False when the model cannot."""
    return bool(llm._ctx.kv_cache_seq_rm(-1, start, -1))


def mark_logits_stale(llm: llama_cpp.Llama) -> None:
    """The context's last logits belong to another sequence: the next completion decodes first."""
    llm._requires_eval = True


def new_sampler(llm: llama_cpp.Llama, **settings: Any) -> Any:
    """The sampler chain `Llama.create_completion` would build for these settings."""
    return llm._init_sampler(**settings)


def replace_context(llm: llama_cpp.Llama, params: Any) -> None:
    """Give `llm` a new context made with `params`, freeing the old one first.

    Raises:
        ValueError: llama.cpp cannot create such a context.
    """
    from llama_cpp import _internals

    llm._ctx.close()  # free the first KV cache before the new one is allocated
    new = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    llm._ctx = llm._stack.enter_context(contextlib.closing(new))
    llm.n_tokens = 0
