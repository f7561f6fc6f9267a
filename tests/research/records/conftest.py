"""MindRecord tests: a byte-level Llama 3-format tokenizer whose records can be written by hand."""
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def byte_llama3_tokenizer_model(tmp_path_factory) -> Path:
    """A Llama 3-format tokenizer.model with only the 256 single bytes, rank = byte value.

    Any text then encodes to its UTF-8 bytes and the special tokens start at 256 (BOS 256, EOS 257,
    pad 258, start_header 262, end_header 263, eot 265), so expected records can be written by hand.
    """
    import base64

    path = tmp_path_factory.mktemp("bytetok") / "tokenizer.model"
    path.write_bytes(b"".join(base64.b64encode(bytes([b])) + b" %d\n" % b for b in range(256)))
    return path
