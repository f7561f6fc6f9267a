"""The tokenizer of a Qwen2/Qwen2.5 HF directory (``Qwen2Tokenizer`` in a YAML's ``processor.tokenizer``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENDOFTEXT", "IM_END", "load_qwen2_tokenizer"]

# Qwen2's special tokens (tokenizer_config.json of every Qwen2/Qwen2.5 repository): documents end with
# <|endoftext|>, which is also the pad; ChatML turns end with <|im_end|>.
ENDOFTEXT, IM_END = "<|endoftext|>", "<|im_end|>"


def load_qwen2_tokenizer(path: str | os.PathLike):
    """The tokenizer of a Qwen2/Qwen2.5 HF directory, with ChatML's ids as this suite uses them.

    Args:
        path: the directory, or its ``vocab.json`` / ``tokenizer.json`` (MindFormers' Qwen2 YAMLs name
            ``vocab_file``); ``tokenizer.json``, or ``vocab.json`` + ``merges.txt``, must be there.

    Returns:
        A ``transformers`` fast tokenizer (byte-level BPE) whose ``eos_token`` is ``<|im_end|>`` (ChatML's
        turn end, where Qwen2-Instruct's generation stops; base Qwen2.5 files say ``<|endoftext|>``) and
        whose ``pad_token`` and ``bos_token`` are ``<|endoftext|>``: Qwen2 prepends no BOS, so a record's
        leading id is the pad, which MindFormers hides as an attention key; the pad is never the EOS.

    Raises:
        FileNotFoundError: no such file or directory.
        ValueError: the tokenizer lacks ``<|endoftext|>`` or ``<|im_end|>`` as single tokens.
    """
    from transformers import AutoTokenizer

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Qwen2 tokenizer not found: {path}")
    directory = path if path.is_dir() else path.parent
    tokenizer = AutoTokenizer.from_pretrained(directory)
    vocab = tokenizer.get_vocab()
    missing = [t for t in (ENDOFTEXT, IM_END) if t not in vocab]
    if missing:
        raise ValueError(f"{directory}: not a Qwen2 tokenizer, it lacks {missing}")
    tokenizer.eos_token = IM_END
    tokenizer.pad_token = tokenizer.bos_token = ENDOFTEXT
    return tokenizer
