"""The base model from a file (``--base_gguf FILE``, ``--base_hf DIR``): its family and dims, whether a YAML
fits it, the YAML derived from it when no ``--config`` is given, and where its conversion is cached.

The family (Llama or Qwen2) is read from the file (``research.llama3.checkpoint.qwen2.model_family``:
GGUF ``general.architecture``, HF ``config.json`` ``model_type``). The derived YAML is the embedded
default's CPU YAML (configs/smollm2_135m/finetune_lora_cpu.yaml, its seq512 variant for logic input) with
every architecture key of ``model.model_config`` (dims, rope theta, RMS eps, ``qkv_has_bias``,
``tie_word_embeddings``, special-token ids) and ``processor.tokenizer`` taken from the file: both families
train on CPU with the same batch, sequence length and LoRA, and everything that differs between them is
in the file (the way configs/tiny/finetune_lora_cpu_qwen2.yaml derives the tiny Qwen2 from the tiny Llama).

Errors are ``ValueError``/``FileNotFoundError`` naming the option and the file; the runner's settings
turn them into ``SettingsError`` (exit 2 before any work).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from functools import lru_cache
from pathlib import Path

from research.llama3.checkpoint.qwen2 import QWEN2
from research.llama3.config.model_config import LlamaDims, read_config
from research.rundir.layout import BASE_CACHE
from research.rundir.manifest import file_sha256, file_stamp

# option (without --) -> the run's base_source
BASE_FILE_OPTIONS = {"base_gguf": "gguf", "base_hf": "hf"}
# The chat template a family's runs use unless --template is given (Qwen2-Instruct speaks ChatML).
FAMILY_TEMPLATES = {QWEN2: "chatml"}
# LlamaDims fields a YAML must share with the base file: they decide the parameters' names and shapes
# (vocab, hidden, layers, heads, FFN, biases, a separate lm_head) or what the weights compute (theta, eps).
FIT_FIELDS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "n_kv_heads", "intermediate_size",
              "qkv_has_bias", "tie_word_embeddings", "theta", "rms_norm_eps")


def base_file_option(options: dict) -> str | None:
    """The base-file option given (``base_gguf`` or ``base_hf``), or None; the two exclude each other
    (``research.run.settings.check_option_conflicts``)."""
    return next((k for k in BASE_FILE_OPTIONS if options.get(k)), None)


@lru_cache(maxsize=4)
def _dims(source: str, path: str, stamp: str) -> LlamaDims:
    if source == "gguf":
        return LlamaDims.from_gguf(path)
    from transformers import AutoConfig

    if not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"{Path(path) / 'config.json'} not found")
    return LlamaDims.from_hf_config(AutoConfig.from_pretrained(path))


def file_dims(source: str, path: str | os.PathLike) -> LlamaDims:
    """The dims of a base file: ``source`` ``gguf`` (metadata; tied when ``output.weight`` is absent or a
    copy of the embedding) or ``hf`` (the directory's ``config.json``). Read once per file version.

    Raises:
        FileNotFoundError: no such file, or a directory without ``config.json``.
        ValueError: neither family, or a feature the converters refuse (rope scaling, sliding window, ...).
    """
    stamp = json.dumps(file_stamp(_stamped_file(source, path)), sort_keys=True)
    return _dims(source, os.fspath(path), stamp)


def _stamped_file(source: str, path) -> Path:
    return Path(path) / "config.json" if source == "hf" and Path(path).is_dir() else Path(path)


def config_mismatches(model_config: dict, dims: LlamaDims) -> list[str]:
    """The ``model.model_config`` keys of a YAML that disagree with a base file's dims, each as
    ``"key: YAML <value>, file <value>"`` (empty when the file's weights fit the YAML). Absent keys take
    MindFormers' defaults (``LlamaDims.from_mindformers``)."""
    yaml_dims = LlamaDims.from_mindformers(model_config)
    problems = []
    for name in FIT_FIELDS:
        ours, theirs = getattr(yaml_dims, name), getattr(dims, name)
        same = math.isclose(ours, theirs, rel_tol=1e-6) if isinstance(theirs, float) else ours == theirs
        if not same:
            problems.append(f"{name}: YAML {ours}, file {theirs}")
    return problems


def check_fits(config: dict, config_path: str, option: str, path: str) -> LlamaDims:
    """The base file's dims, once the YAML's ``model.model_config`` is checked against them.

    Raises:
        ValueError: keys that disagree (all of them named), or see :func:`file_dims`.
        FileNotFoundError: see :func:`file_dims`.
    """
    dims = file_dims(BASE_FILE_OPTIONS[option], path)
    mismatches = config_mismatches(config["model"]["model_config"], dims)
    if mismatches:
        raise ValueError(f"--config {config_path} does not fit --{option} {path} ({dims.family}): "
                         f"{'; '.join(mismatches)}")
    return dims


def file_key(source: str, path: str | os.PathLike) -> str:
    """What identifies a base file's contents: the sha256 of a GGUF file's bytes; for a HF directory
    (gigabytes of shards) the sha256 of the size and modification time of its ``config.json`` and
    ``*.safetensors``/index files."""
    if source == "gguf":
        return file_sha256(path)
    files = sorted(p for p in Path(path).iterdir() if p.name == "config.json" or ".safetensors" in p.name)
    stamps = [{**file_stamp(p), "path": p.name} for p in files]
    return hashlib.sha256(json.dumps(stamps, sort_keys=True).encode()).hexdigest()


def converted_checkpoint(source: str, key: str) -> Path:
    """Where a base file converted to MindFormers names is cached (``.cache/base/<source>-<key>.ckpt``),
    shared by every run of this checkout on the same file."""
    return BASE_CACHE / f"{source}-{key[:16]}.ckpt"


def convert_command(python: str, source: str, path: str, out: Path) -> list:
    """The converter CLI writing the float32 MindFormers checkpoint ``out`` from a base file."""
    if source == "gguf":
        return [python, "-m", "research.llama3.checkpoint.convert_gguf", "--gguf", path, "--output", out]
    return [python, "-m", "research.llama3.checkpoint.convert_hf", "to_mindformers", "--hf_dir", path,
            "--output", out]


def tokenizer_spec(source: str, path: str | os.PathLike, family: str) -> dict:
    """``processor.tokenizer`` for a base file: the GGUF's embedded tokenizer (``GGUFTokenizer``), a Qwen2
    directory's files (``Qwen2Tokenizer``), or a Llama 3 directory's ``original/tokenizer.model``
    (``Llama3Tokenizer``).

    Raises:
        ValueError: a Llama directory without ``original/tokenizer.model``.
    """
    path = Path(path).resolve()
    if source == "gguf":
        return {"type": "GGUFTokenizer", "gguf_file": str(path)}
    if family == QWEN2:
        return {"type": "Qwen2Tokenizer", "vocab_file": str(path)}
    tiktoken = path / "original" / "tokenizer.model"
    if tiktoken.is_file():
        return {"type": "Llama3Tokenizer", "vocab_file": str(tiktoken)}
    raise ValueError(f"--base_hf {path}: a Llama directory's tokenizer is read from original/tokenizer.model "
                     f"(Meta's Llama 3 layout), which it lacks; give --config with its processor.tokenizer")


def derive_config(source: str, path: str | os.PathLike, template: str | os.PathLike, out: Path) -> Path:
    """Write the run's YAML for a base file: ``template`` (``base_config`` resolved) with the file's
    architecture keys and tokenizer (see the module docstring).

    Special-token ids are the tokenizer's (as ``research.llama3.tokenizers.tokenizer`` builds it); the pad
    is the tokenizer's unless it equals the EOS (SmolLM2: both ``<|im_end|>``), as MindFormers hides every
    input token equal to ``pad_token_id`` from attention; then the template's pad stays.

    Returns:
        ``out``, a YAML without ``base_config``.

    Raises:
        FileNotFoundError, ValueError: see :func:`file_dims` and :func:`tokenizer_spec`.
    """
    import yaml

    from research.llama3.tokenizers.tokenizer import build_tokenizer

    dims = file_dims(source, path)
    config = read_config(template)
    config.pop("base_config", None)
    spec = tokenizer_spec(source, path, dims.family)
    tokenizer = build_tokenizer(spec)
    model_config = config["model"]["model_config"]
    pad = tokenizer.pad_id if tokenizer.pad_id != tokenizer.eos_id else model_config.get("pad_token_id")
    model_config.update(dims.to_mindformers_kwargs(pad_token_id=pad))
    model_config.update({k: v for k, v in (("bos_token_id", tokenizer.bos_id), ("eos_token_id", tokenizer.eos_id))
                         if v is not None})
    model_config["qkv_has_bias"] = dims.qkv_has_bias
    config["processor"] = {**(config.get("processor") or {}), "tokenizer": spec}
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# Written by the runner for --base_{source} {Path(path).resolve()} ({dims.family}): {template}\n"
              f"# with model.model_config's architecture keys and processor.tokenizer read from that file.\n")
    out.write_text(header + yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=False, allow_unicode=True),
                   encoding="utf-8")
    return out
