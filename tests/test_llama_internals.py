"""Conformance of the installed llama-cpp-python with every private name localdigest uses.

Runs against whatever version is installed: a release that renamed one of them fails here (and
at load, with the same message) rather than deep inside a digest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from localdigest.backends import llama_internals
from localdigest.errors import ModelError

pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def llm(tiny_model_path: Path):  # type: ignore[no-untyped-def]
    import llama_cpp

    model = llama_cpp.Llama(model_path=str(tiny_model_path), n_ctx=128, verbose=False)
    yield model
    model.close()


def test_the_installed_version_has_every_private_name(llm) -> None:  # type: ignore[no-untyped-def]
    llama_internals.check_compatible()
    llama_internals.check_compatible(llm)


def test_the_pin_is_the_tested_range() -> None:
    import llama_cpp
    from packaging.specifiers import SpecifierSet

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"llama-cpp-python{llama_internals.TESTED_VERSIONS}"' in pyproject
    assert llama_cpp.__version__ in SpecifierSet(llama_internals.TESTED_VERSIONS)


def test_each_private_use_works_on_a_loaded_model(llm) -> None:  # type: ignore[no-untyped-def]
    import llama_cpp

    tokens = llm.tokenize(b"hello world", add_bos=False)
    llm.reset()
    llm.eval(tokens)
    assert llama_internals.cached_tokens(llm) == tokens
    assert llama_internals.drop_cached_tokens(llm, 1)
    assert not llama_internals.is_stateful(llm)
    assert isinstance(llama_internals.adds_bos(llm), bool)
    assert llama_internals.bos_eos_texts(llama_internals.model(llm)) == ("<s>", "<|im_end|>")
    assert llama_cpp.llama_vocab_is_eog(llama_internals.vocab(llm), llm.token_eos())
    assert llama_cpp.llama_get_memory(llama_internals.context_pointer(llm))
    sampler = llama_internals.new_sampler(llm, temp=0.0, repeat_penalty=1.0)
    assert 0 <= sampler.sample(llama_internals.context(llm), -1) < llm.n_vocab()
    sampler.close()
    params = llm.context_params
    params.n_seq_max = 2
    llama_internals.replace_context(llm, params)
    assert llama_cpp.llama_n_seq_max(llama_internals.context_pointer(llm)) == 2
    assert llm.n_tokens == 0


def test_a_vocabulary_loads_without_weights(tiny_model_path: Path, tmp_path: Path) -> None:
    with llama_internals.vocabulary_only(tiny_model_path) as loaded:
        assert llama_internals.bos_eos_texts(loaded) == ("<s>", "<|im_end|>")
    (tmp_path / "empty.gguf").write_bytes(b"GGUF")
    with pytest.raises(ValueError), llama_internals.vocabulary_only(tmp_path / "empty.gguf"):
        pass


def test_model_params_change_only_while_a_model_is_constructed(tiny_model_path: Path) -> None:
    import llama_cpp

    assert llama_cpp.llama_model_default_params().use_extra_bufts
    with llama_internals.model_params(use_extra_bufts=False):
        llm = llama_cpp.Llama(model_path=str(tiny_model_path), n_ctx=64, verbose=False)
        assert not llm.model_params.use_extra_bufts
    assert llama_cpp.llama_model_default_params().use_extra_bufts
    assert llm.tokenize(b"hello")


def test_the_source_for_another_checkout_sets_the_same_parameters() -> None:
    namespace: dict[str, object] = {}
    exec(llama_internals.model_params_source(use_extra_bufts=False), namespace)
    import llama_cpp.llama as llama_module

    try:
        assert not llama_module.llama_cpp.llama_model_default_params().use_extra_bufts
    finally:
        llama_module.llama_cpp.llama_model_default_params = namespace["defaults"]


def test_a_missing_name_is_reported_with_the_version_and_the_tested_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import llama_cpp

    monkeypatch.delattr(llama_cpp.Llama, "_init_sampler")
    with pytest.raises(ModelError) as error:
        llama_internals.check_compatible(object())  # type: ignore[arg-type]
    message = str(error.value)
    assert f"llama-cpp-python {llama_cpp.__version__} lacks" in message
    assert "Llama._init_sampler" in message and "Llama()._stack" in message
    assert f"pip install 'llama-cpp-python{llama_internals.TESTED_VERSIONS}'" in message
