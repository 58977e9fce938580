"""The llama.cpp backend: a GGUF loaded with llama-cpp-python, prompts from its own chat template.

Prefix reuse: the KV cache keeps the tokens of the last call. A new prompt that starts with the
same tokens (the pipeline puts the paper first in every user message) evaluates only its suffix;
`CallStats.evaluated_tokens` records how many tokens were actually evaluated.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import localdigest.backends.llama_internals as llama_internals
from localdigest.backend import (
    CallStats,
    Completion,
    GenerationOptions,
    Message,
    ModelInfo,
    common_prefix_length,
)
from localdigest.backends.chat_template import ChatFormat, chat_format
from localdigest.errors import GenerationError, ModelError
from localdigest.models import ModelEntry, check_model_file, verify_checksum

if TYPE_CHECKING:
    import llama_cpp

    from localdigest.backends.parallel import SequencePool

log = logging.getLogger("localdigest.backend")

DEFAULT_CTX = 4096  # when neither the user nor the caller says what the prompt needs
AUTO_PARALLEL = 8  # answers decoded together by default (see benchmarks/README.md)
PARALLEL_ROOM = 512  # context each extra parallel sequence needs: its task and its answer


def count_physical_cores(cpuinfo: str, allowed: set[int] | None) -> int | None:
    """Distinct (package, core) pairs among the CPUs we may run on, from /proc/cpuinfo text."""
    cores: set[tuple[str, str]] = set()
    for block in cpuinfo.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if "processor" not in fields or "core id" not in fields:
            continue
        if allowed is not None and int(fields["processor"]) not in allowed:
            continue
        cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None


def physical_cores() -> int:
    """Physical cores available to this process: hyperthreads share one core's arithmetic units.

    llama-cpp-python defaults to half the logical CPUs (1 thread on a 2-core machine, 30-40%
    slower here), so we choose the count ourselves, for generation and prompt evaluation alike.
    """
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return (
        count_physical_cores(read_cpuinfo(), allowed) or len(allowed or ()) or os.cpu_count() or 1
    )


def read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def has_amx(cpuinfo: str) -> bool:
    """Whether the CPU has AMX, whose llama.cpp weight buffer crashes generation.

    Seen here with llama-cpp-python 0.3.36 built natively on a Sapphire Rapids CPU: the AMX
    buffer repacks the q4_K/q6_K weights at load, then the first llama_decode dies with SIGSEGV
    (the tiny f32 test model never uses that buffer). Loading with `use_extra_bufts` off works.
    """
    return any(
        line.startswith("flags") and " amx_int8" in f"{line} " for line in cpuinfo.splitlines()
    )


def _prompt_format(path: Path, template: str | None, bos: str, eos: str) -> ChatFormat:
    try:
        return chat_format(template, bos, eos)
    except ValueError as exc:
        raise _unusable_template(path, exc) from None


def _cannot_load(path: Path, architecture: str, detail: str) -> ModelError:
    import llama_cpp

    return ModelError(
        f"{path}: llama.cpp (llama-cpp-python {llama_cpp.__version__}) cannot load this model "
        f"(architecture '{architecture}'){detail}; an unsupported architecture needs a newer "
        "llama-cpp-python, a damaged file a new download"
    )


def _unusable_template(path: Path, exc: Exception) -> ModelError:
    return ModelError(
        f"{path}: the GGUF's chat template cannot be used ({exc}); "
        "use a model whose template works with Jinja2"
    )


@dataclass(frozen=True)
class ModelSupport:
    """What `models add` found: a GGUF this llama.cpp runs, and how localdigest prompts it."""

    architecture: str
    context_length: int
    sliding_window: int  # 0: none
    chat_template: bool  # False: the GGUF has none; the plain User:/Assistant: format is used

    def describe(self) -> str:
        window = f", sliding window {self.sliding_window}" if self.sliding_window else ""
        template = (
            "its chat template from the GGUF" if self.chat_template
            else "no chat template: the plain User:/Assistant: format is used"
        )  # fmt: skip
        return (
            f"architecture {self.architecture} (llama.cpp loads it), trained context "
            f"{self.context_length} tokens{window}, {template}"
        )


def check_support(path: Path) -> ModelSupport:
    """What `models add` checks before copying a GGUF, in about a second (no weights loaded):
    llama.cpp knows its architecture, it says its trained context length, and its chat template
    renders a chat (a GGUF without one gets the plain format).

    Raises:
        ModelError: not a complete GGUF, an architecture this llama.cpp cannot load, no
            context length, or a chat template that cannot render.
    """

    header = check_model_file(path)
    if not header.context_length:
        raise ModelError(
            f"{path}: the GGUF gives no context length ({header.architecture}.context_length)"
        )
    try:
        with llama_internals.vocabulary_only(path) as loaded:
            bos, eos = llama_internals.bos_eos_texts(loaded)
    except ValueError:
        raise _cannot_load(path, header.architecture, "") from None
    _prompt_format(path, header.chat_template, bos, eos)
    return ModelSupport(
        header.architecture, header.context_length, header.sliding_window,
        header.chat_template is not None,
    )  # fmt: skip


class LlamaBackend:
    """A GGUF model in llama.cpp; implements `localdigest.backend.Backend`."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        entry: ModelEntry | None = None,
        n_ctx: int = 0,
        n_ctx_hint: int | None = None,
        n_threads: int = 0,
        n_gpu_layers: int = -1,
        seed: int = 42,
        flash_attn: bool | None = None,
        n_batch: int = 512,
        parallel: int = 0,
        verbose: bool = False,
        choice: str = "",
    ) -> None:
        """Check and load a model file.

        Args:
            path: the GGUF file.
            name: display name (registry name); defaults to the file's stem.
            entry: registry entry, to check size and sha256 against.
            n_ctx: context size; 0 picks `n_ctx_hint` (what the caller's prompts need, including
                generated tokens) or 4096, capped at the model's trained context length.
            n_threads: threads for generation and prompt evaluation; 0 = physical cores.
            n_gpu_layers: layers to offload; -1 = all when this llama.cpp build has a GPU, else 0.
            seed: the context's sampling seed (each call may set its own).
            flash_attn: None = on with a GPU, off on CPU (measured slower on this CPU).
            n_batch: prompt tokens evaluated per llama_decode call.
            parallel: chats of one `chat_many` decoded together as sequences sharing their
                prefix; 0 = AUTO_PARALLEL, 1 = one after another.
            verbose: let llama.cpp print its own logs on stderr.
            choice: how `--model auto` chose this model; recorded with the runtime parameters.

        Raises:
            ModelError: missing file, not a GGUF, truncated, checksum mismatch, or llama.cpp
                cannot load it (for example an architecture this build does not know).
        """
        import llama_cpp

        self.path = Path(path)
        header = check_model_file(self.path, entry)
        self._sha256 = verify_checksum(self.path, entry)
        self._architecture = header.architecture
        self._n_ctx_train = header.context_length or DEFAULT_CTX
        self._parallel = parallel if parallel > 0 else AUTO_PARALLEL
        if n_ctx <= 0:
            n_ctx = min(n_ctx_hint or DEFAULT_CTX, self._n_ctx_train)
        elif n_ctx > self._n_ctx_train:
            log.warning("context %d exceeds the %d tokens %s was trained on; quality may drop",
                        n_ctx, self._n_ctx_train, self.path.name)  # fmt: skip
        gpu = bool(llama_cpp.llama_supports_gpu_offload())
        if n_gpu_layers < 0:
            n_gpu_layers = -1 if gpu else 0
        if flash_attn is None:
            flash_attn = gpu and n_gpu_layers != 0
        threads = n_threads if n_threads > 0 else physical_cores()
        self._name = name or self.path.stem
        self._params: dict[str, Any] = {
            "threads": threads,
            "gpu_layers": n_gpu_layers,
            "n_batch": min(n_batch, n_ctx),
            "flash_attn": flash_attn,
            "kv_type": "f16",
            "seed": seed,
            "parallel": self._parallel,
            "llama_cpp_python": llama_cpp.__version__,
        }
        if header.sliding_window:
            self._params["sliding_window"] = header.sliding_window
        if choice:
            self._params["model_choice"] = choice
        if not gpu and has_amx(read_cpuinfo()):
            self._params["weight_repacking"] = False  # see has_amx
        self._llm = self._load(n_ctx, n_batch, verbose)
        self._pool = self._sequence_pool()
        self._n_ctx = self._llm.n_ctx()
        self._format = self._chat_format(header.chat_template)

    def _load(self, n_ctx: int, n_batch: int, verbose: bool) -> llama_cpp.Llama:
        """llama.cpp's model and context with the parameters chosen in __init__."""
        import jinja2
        import llama_cpp

        p = self._params
        llama_internals.check_compatible()
        try:
            with llama_internals.model_params(use_extra_bufts=p.get("weight_repacking", True)):
                llm = llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=n_ctx,
                    n_batch=n_batch,
                    n_threads=p["threads"],
                    n_threads_batch=p["threads"],
                    n_gpu_layers=p["gpu_layers"],
                    seed=p["seed"],
                    flash_attn=p["flash_attn"],
                    type_k=llama_cpp.GGML_TYPE_F16,
                    type_v=llama_cpp.GGML_TYPE_F16,
                    # Sliding-window layers keep every position's cells, as the other layers
                    # do: a smaller window cache drops the cells a reused prefix needs, and
                    # prefix reuse then silently gave another answer (Gemma 3, issue 24).
                    swa_full=True,
                    verbose=verbose,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise _cannot_load(self.path, self._architecture, f": {exc}") from None
        except jinja2.TemplateError as exc:  # Llama compiles the GGUF's chat template
            raise _unusable_template(self.path, exc) from None
        llama_internals.check_compatible(llm)
        return llm

    def _sequence_pool(self) -> SequencePool | None:
        """Room for parallel sequences sharing a prefix; none for a recurrent model, whose
        state cannot be shared by sequences."""
        if self._parallel <= 1 or llama_internals.is_stateful(self._llm):
            self._parallel = self._params["parallel"] = 1
            return None
        from localdigest.backends.parallel import PARKED_SEQUENCES, SequencePool, enable_sequences

        n_seq = 1 + self._parallel + PARKED_SEQUENCES  # the prefix, live ones, parked ones
        enable_sequences(self._llm, n_seq)
        return SequencePool(n_seq)

    def _chat_format(self, template: str | None) -> ChatFormat:
        """The GGUF's chat template (PLAIN_TEMPLATE where it has none), with its BOS and EOS;
        which one is recorded with the runtime parameters."""
        self._bos_text, eos_text = llama_internals.bos_eos_texts(llama_internals.model(self._llm))
        self._params["chat_template"] = "gguf" if template else "plain"
        if not template:
            log.info("%s has no chat template: using the plain User:/Assistant: format",
                     self.path.name)  # fmt: skip
        return _prompt_format(self.path, template, self._bos_text, eos_text)

    # ------------------------------------------------------------ Backend interface

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            name=self._name,
            path=str(self.path),
            sha256=self._sha256,
            architecture=self._architecture,
            n_ctx_train=self._n_ctx_train,
            n_ctx=self._n_ctx,
            params=dict(self._params),
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain text (special-token markup in `text` is not interpreted)."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def detokenize(self, tokens: list[int]) -> str:
        return self._llm.detokenize(tokens).decode("utf-8", errors="replace")

    def chat(self, messages: list[Message], options: GenerationOptions) -> Completion:
        tokens = self.prompt_tokens(messages)
        self._check_room(tokens, options)
        if self._pool is not None:  # Llama.eval drops every sequence's cells past the prefix
            self._pool.keep_only(self._memory(), None)
        reused = self._reuse_prefix(tokens)
        started = time.perf_counter()
        try:
            self._llm.eval(tokens[reused:])
            evaluated = time.perf_counter()
            result: Any = self._llm.create_completion(
                prompt=tokens,
                max_tokens=options.max_tokens,
                temperature=options.temperature,
                repeat_penalty=options.repeat_penalty,
                seed=options.seed,
                stop=self.stops(options),
            )
        except RuntimeError as exc:  # llama_decode failures surface as RuntimeError
            raise GenerationError(f"llama.cpp failed while generating: {exc}") from None
        finished = time.perf_counter()
        choice = result["choices"][0]
        stats = CallStats(
            prompt_tokens=len(tokens),
            evaluated_tokens=len(tokens) - reused,
            generated_tokens=int(result["usage"]["completion_tokens"]),
            prompt_seconds=evaluated - started,
            generation_seconds=finished - evaluated,
        )
        return Completion(choice["text"], stats, choice.get("finish_reason") or "stop")

    def chat_many(
        self, prompts: list[list[Message]], options: GenerationOptions
    ) -> list[Completion]:
        """Decoded as parallel sequences sharing the prompts' common prefix (`parallel` > 1)."""
        pool = self._pool
        single = len(prompts) <= 1 and not (pool and pool.parked)  # a retry may be parked
        if self._parallel <= 1 or pool is None or single:
            return [self.chat(messages, options) for messages in prompts]
        from localdigest.backends.parallel import decode_parallel

        token_lists = [self.prompt_tokens(messages) for messages in prompts]
        for tokens in token_lists:
            self._check_room(tokens, options)
        with_stops = dataclasses.replace(options, stop=self.stops(options))
        return decode_parallel(self._llm, pool, token_lists, with_stops, self._parallel)

    def stops(self, options: GenerationOptions) -> list[str]:
        """The caller's stop strings and the chat format's (the plain format's next turn)."""
        return [*options.stop, *(s for s in self._format.stops if s not in options.stop)]

    def score(self, pairs: list[tuple[list[Message], str]]) -> list[float]:
        """Forced decoding of all pairs together, sharing their common prefix and each prompt
        (backends/scoring.py); parked prompts are kept while the cache has room for them."""
        from localdigest.backends.scoring import score_tokens

        token_pairs = []
        for messages, reply in pairs:
            prompt, tokens = self.prompt_tokens(messages), self.tokenize(reply)
            self._check_room(prompt + tokens, GenerationOptions(max_tokens=0))
            token_pairs.append((prompt, tokens))
        try:
            return score_tokens(self._llm, self._pool, token_pairs, self._parallel)
        except RuntimeError as exc:
            raise GenerationError(f"llama.cpp failed while scoring: {exc}") from None

    def forget(self) -> None:
        import llama_cpp

        if self._pool is not None:
            self._pool.keep_only(self._memory(), None)
        llama_cpp.llama_memory_clear(self._memory(), True)
        self._llm.reset()

    def _memory(self) -> Any:
        import llama_cpp

        return llama_cpp.llama_get_memory(llama_internals.context_pointer(self._llm))

    def _check_room(self, tokens: list[int], options: GenerationOptions) -> None:
        if len(tokens) + options.max_tokens > self._n_ctx:
            raise ModelError(
                f"context too small: the prompt has {len(tokens)} tokens and up to "
                f"{options.max_tokens} may be generated, but the context holds {self._n_ctx}; "
                f"raise --ctx (this model was trained on {self._n_ctx_train})"
            )

    # ------------------------------------------------------------ helpers (also for benchmarks)

    def format_prompt(self, messages: list[Message]) -> str:
        """The prompt text the GGUF's chat template makes of `messages`."""
        return self._format.render(messages)

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        prompt = self.format_prompt(messages)
        add_bos = llama_internals.adds_bos(self._llm) and not (
            self._bos_text and prompt.startswith(self._bos_text)
        )
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)

    def _reuse_prefix(self, tokens: list[int]) -> int:
        """Keep the cached tokens `tokens` starts with; return how many are kept.

        At least the last prompt token is evaluated again, so sampling starts from fresh logits.
        """
        llm = self._llm
        cached = llama_internals.cached_tokens(llm)
        reused = max(0, min(common_prefix_length(cached, tokens), len(tokens) - 1))
        if reused < llm.n_tokens and not llama_internals.drop_cached_tokens(llm, reused):
            # recurrent/hybrid models cannot drop part of their state: start over
            llm.reset()
            return 0
        llm.n_tokens = reused
        return reused

    def close(self) -> None:
        """Free the model and its context now rather than at garbage collection."""
        self._llm.close()

    def __enter__(self) -> LlamaBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
