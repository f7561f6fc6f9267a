"""The Qwen2 / Qwen2.5 family: where it differs from Llama, for every converter.

Qwen2 is MindFormers' Llama with three differences, all carried by :class:`LlamaDims`:

- q/k/v projections carry a bias (``qkv_has_bias=True`` in MindFormers' ``LlamaConfig``; HF
  ``Qwen2Attention`` always has them, ``o_proj`` and the MLP have none);
- rope theta 1e6 and RMS-norm eps 1e-6 (read from the file, never assumed);
- tied embeddings at 0.5B/1.5B/3B (``tie_word_embeddings``), untied from 7B.

MindFormers 1.9's own ``Qwen2ForCausalLM`` is predict-only (train mode raises ``NotImplementedError``),
so training, LoRA and export go through ``LlamaForCausalLM`` built with those keys; evaluation through
transformers uses ``transformers.Qwen2ForCausalLM``. GGUF files by llama.cpp differ from Llama ones in
their metadata prefix (``qwen2.``), the ``blk.N.attn_{q,k,v}.bias`` tensors, and q/k rows that are not
permuted (llama.cpp's converter permutes them for the ``llama`` architecture only).

The family of a file is read from it (:func:`model_family`): GGUF ``general.architecture``, HF
``config.json`` ``model_type``. Its tokenizer is ``research.llama3.tokenizers.qwen2_tokenizer``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["FAMILIES", "QWEN2", "LLAMA", "model_family", "check_qwen2_hf_config", "qwen2_hf_config"]

LLAMA = "llama"
QWEN2 = "qwen2"
# GGUF general.architecture and HF model_type share these names for both families.
FAMILIES = (LLAMA, QWEN2)


def model_family(path: str | os.PathLike) -> str:
    """The family (``"llama"`` or ``"qwen2"``) of a GGUF file or a HF directory, read from the file.

    Args:
        path: a ``.gguf`` file (``general.architecture``) or a directory with ``config.json``
            (``model_type``).

    Raises:
        FileNotFoundError: neither a file nor a directory with ``config.json``.
        ValueError: a family this suite cannot train (the message names it and the known ones).
    """
    path = Path(path)
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise FileNotFoundError(f"{config} not found")
        with open(config, encoding="utf-8") as f:
            family = json.load(f).get("model_type")
    elif path.is_file():
        import gguf

        from research.llama3.checkpoint.gguf_file import gguf_field

        family = gguf_field(gguf.GGUFReader(os.fspath(path), "r"), "general.architecture")
    else:
        raise FileNotFoundError(f"no GGUF file or HF directory at {path}")
    if family not in FAMILIES:
        raise ValueError(f"{path}: model family {family!r} is not supported; known: {', '.join(FAMILIES)}")
    return family


def check_qwen2_hf_config(config) -> None:
    """Refuse sliding window attention (``use_sliding_window``) in a ``transformers.Qwen2Config``: MindFormers'
    Llama attends over the whole sequence. (``LlamaDims.from_hf_config`` checks what both families share.)

    Raises:
        ValueError: ``use_sliding_window`` is set.
    """
    if getattr(config, "use_sliding_window", False):
        raise ValueError("sliding window attention (use_sliding_window) is not supported")


def qwen2_hf_config(common: dict):
    """A ``transformers.Qwen2Config`` from the keyword arguments both families' configs take
    (``LlamaDims.to_hf_config``), with full attention: ``Qwen2Attention`` always has its q/k/v biases."""
    from transformers import Qwen2Config

    return Qwen2Config(**common, use_sliding_window=False)
