"""Hugging Face safetensors Llama and Qwen2 checkpoints <-> MindFormers checkpoints.

The HF side is the layout of Meta's ``meta-llama/Meta-Llama-3-8B`` repository: ``config.json``
plus ``model.safetensors`` or sharded ``model-0000K-of-0000N.safetensors`` with
``model.safetensors.index.json``. Tensors map one-to-one by name (``weight_names``), no transposes
or rotary permutations (HF and MindFormers both rotate halves).

CLI::

    # HF directory -> MindFormers base checkpoint (prints the dims for the YAML's model_config)
    python -m research.llama3.checkpoint.convert_hf to_mindformers --hf_dir DIR --output base.ckpt [--dtype bfloat16]
    # MindFormers checkpoint (+ optional LoRA, merged) -> HF directory
    python -m research.llama3.checkpoint.convert_hf to_hf --config YAML --load_checkpoint base.ckpt \\
        [--lora_checkpoint lora.ckpt] --output_dir DIR [--dtype bfloat16] [--with_tokenizer]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from research.llama3.config.model_config import LlamaDims, read_model_config
from research.llama3.checkpoint.ms_checkpoint import MS_DTYPES, save_ms_checkpoint
from research.llama3.checkpoint.weight_names import hf_to_ms_name
from preprocess.cli import Parser, UserError, reported_as, run_main

__all__ = ["read_hf_checkpoint", "convert_hf_to_mindformers", "convert_mindformers_to_hf", "main"]

_INDEX = "model.safetensors.index.json"
_SINGLE = "model.safetensors"


def _shard_files(hf_dir: Path) -> list[Path]:
    index = hf_dir / _INDEX
    if index.is_file():
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        return [hf_dir / name for name in sorted(set(weight_map.values()))]
    if (hf_dir / _SINGLE).is_file():
        return [hf_dir / _SINGLE]
    raise FileNotFoundError(f"{hf_dir}: neither {_INDEX} nor {_SINGLE} found")


def read_hf_checkpoint(hf_dir: str | os.PathLike) -> tuple[dict, LlamaDims]:
    """Tensors and dims of a HF Llama or Qwen2 safetensors directory (family from ``config.json`` model_type).

    Returns:
        ``(tensors, dims)``: HF ``state_dict`` name -> torch tensor in its stored dtype (bfloat16
        for Meta's files), and the dims from ``config.json``. A tied model has no ``lm_head.weight``.

    Raises:
        FileNotFoundError: no ``config.json`` or no safetensors files (or a shard named in the index).
        ValueError: not a plain Llama/Qwen2 config (see ``LlamaDims.from_hf_config``), or tensors that
            disagree with it (missing, unexpected, mis-shaped), naming them.
    """
    from safetensors import safe_open
    from transformers import AutoConfig

    hf_dir = Path(hf_dir)
    if not (hf_dir / "config.json").is_file():
        raise FileNotFoundError(f"{hf_dir / 'config.json'} not found")
    dims = LlamaDims.from_hf_config(AutoConfig.from_pretrained(hf_dir))
    tensors = {}
    for shard in _shard_files(hf_dir):
        if not shard.is_file():
            raise FileNotFoundError(f"shard {shard} named in {_INDEX} not found")
        with safe_open(shard, framework="pt") as f:
            for name in f.keys():
                if name.endswith("rotary_emb.inv_freq"):  # a buffer older transformers saved; recomputed
                    continue
                tensors[name] = f.get_tensor(name)
    if dims.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
    expected = dims.hf_shapes()
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(f"{hf_dir}: tensors disagree with config.json: missing={missing[:5]} extra={extra[:5]}")
    wrong = [(n, tuple(t.shape), expected[n]) for n, t in tensors.items() if tuple(t.shape) != expected[n]]
    if wrong:
        raise ValueError(f"{hf_dir}: tensor shapes disagree with config.json (name, got, expected): {wrong[:5]}")
    return tensors, dims


def convert_hf_to_mindformers(hf_dir: str | os.PathLike, out_ckpt: str | os.PathLike,
                              dtype: str = "float32") -> LlamaDims:
    """Write a MindFormers checkpoint (``Parameter.name`` keys) from a HF Llama or Qwen2 directory.

    Args:
        hf_dir: see ``read_hf_checkpoint``.
        out_ckpt: ``.ckpt`` destination, written atomically.
        dtype: storage dtype (``MS_DTYPES``); match the YAML's ``param_init_type``.

    Returns:
        The model's dims (``to_mindformers_kwargs()`` gives the YAML's architecture keys).

    Raises:
        see ``read_hf_checkpoint`` and ``save_ms_checkpoint``.
    """
    tensors, dims = read_hf_checkpoint(hf_dir)
    save_ms_checkpoint({hf_to_ms_name(name): t for name, t in tensors.items()}, out_ckpt, dtype)
    return dims


def convert_mindformers_to_hf(ckpt: str | os.PathLike, dims: LlamaDims, out_dir: str | os.PathLike,
                              lora_ckpt: str | None = None, lora_alpha: float = 16, lora_rank: int = 8,
                              dtype: str = "float32", tokenizer=None) -> Path:
    """Write a HF directory (config.json + safetensors shards) from a MindFormers checkpoint.

    LoRA deltas (in ``ckpt`` or ``lora_ckpt``) are merged with scaling ``lora_alpha / lora_rank``
    (``to_hf.build_hf_model``). Loadable with ``AutoModelForCausalLM.from_pretrained(out_dir)``.

    Raises:
        ValueError: unknown ``dtype``, or see ``to_hf.build_hf_model``.
    """
    import torch

    from research.llama3.checkpoint.to_hf import build_hf_model, save_hf_model

    if dtype not in MS_DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; known: {MS_DTYPES}")
    model = build_hf_model(os.fspath(ckpt), dims, lora_ckpt=lora_ckpt, lora_alpha=lora_alpha, lora_rank=lora_rank)
    model = model.to(getattr(torch, dtype))
    model.config.dtype = dtype
    return save_hf_model(model, tokenizer, out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m research.llama3.checkpoint.convert_hf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    to_ms = sub.add_parser("to_mindformers", help="HF safetensors directory -> MindFormers checkpoint")
    to_ms.add_argument("--hf_dir", required=True, help="directory with config.json and *.safetensors")
    to_ms.add_argument("--output", required=True, help="checkpoint to write (*.ckpt)")
    to_ms.add_argument("--dtype", default="float32", choices=MS_DTYPES, help="storage dtype")
    to_hf = sub.add_parser("to_hf", help="MindFormers checkpoint (+ LoRA, merged) -> HF directory")
    to_hf.add_argument("--config", required=True, help="MindFormers YAML (model_config dims, pet_config)")
    to_hf.add_argument("--load_checkpoint", required=True, help="MindFormers checkpoint")
    to_hf.add_argument("--lora_checkpoint", default=None, help="LoRA checkpoint to merge (alpha/rank from YAML)")
    to_hf.add_argument("--output_dir", required=True, help="HF directory to write")
    to_hf.add_argument("--dtype", default="float32", choices=MS_DTYPES, help="saved dtype")
    to_hf.add_argument("--with_tokenizer", action="store_true", help="also save the YAML's processor.tokenizer")
    args = parser.parse_args(argv)
    with reported_as(UserError, FileNotFoundError, KeyError, ValueError):
        if args.command == "to_mindformers":
            dims = convert_hf_to_mindformers(args.hf_dir, args.output, args.dtype)
            print(json.dumps(dims.to_dict(), indent=2))
            print(f"wrote {args.output}")
            return 0
        from research.llama3.checkpoint.merge_lora import lora_scaling

        model_config = read_model_config(args.config)
        pet = model_config.get("pet_config")
        # A YAML without pet_config describes a checkpoint without LoRA tensors: nothing gets scaled.
        alpha, rank = lora_scaling(pet, args.config) if pet or args.lora_checkpoint else (1.0, 1)
        tokenizer = None
        if args.with_tokenizer:
            from research.llama3.tokenizers.tokenizer import tokenizer_from_config

            tokenizer = tokenizer_from_config(args.config).hf
        out = convert_mindformers_to_hf(args.load_checkpoint, LlamaDims.from_mindformers(model_config),
                                        args.output_dir, args.lora_checkpoint, alpha, rank, args.dtype, tokenizer)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
