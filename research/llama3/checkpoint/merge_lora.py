"""Merge a LoRA adapter into MindFormers base weights and write a plain MindFormers checkpoint.

``W' = W + (lora_alpha / lora_rank) * B @ A`` for every adapted projection, as MindPet's
``LoRADense`` computes at run time. The alpha and rank come from the YAML's ``pet_config`` (or the
PEFT adapter's config) and are never defaulted: MindFormers 1.9's ``transform_ckpt_lora`` merges
with scaling 1 unless told otherwise, which silently changes the model.

The result loads into the same YAML's model with ``pet_config`` removed (no LoRA cells).

CLI::

    python -m research.llama3.checkpoint.merge_lora --config YAML --load_checkpoint base.ckpt \\
        --lora_checkpoint lora.ckpt|ADAPTER_DIR --output merged.ckpt [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import os
import sys

from research.llama3.config.model_config import read_model_config
from research.llama3.checkpoint.ms_checkpoint import MS_DTYPES, load_ms_checkpoint, save_ms_checkpoint
from research.llama3.checkpoint.to_hf import merge_lora
from research.llama3.checkpoint.weight_names import is_lora_name
from preprocess.cli import Parser, UserError, reported_as, run_main

__all__ = ["lora_scaling", "merge_lora_checkpoint", "main"]


def lora_scaling(pet_config: dict | None, source: str) -> tuple[float, int]:
    """``(lora_alpha, lora_rank)`` of a ``pet_config``, refusing to guess.

    Args:
        pet_config: a MindFormers ``pet_config`` mapping (may be None).
        source: where it came from, for the error message (e.g. the YAML path).

    Raises:
        ValueError: ``lora_alpha`` or ``lora_rank`` is absent.
    """
    pet = pet_config or {}
    missing = [key for key in ("lora_alpha", "lora_rank") if pet.get(key) is None]
    if missing:
        raise ValueError(f"{source}: pet_config lacks {missing}; merging needs the training run's values")
    return float(pet["lora_alpha"]), int(pet["lora_rank"])


def merge_lora_checkpoint(base_ckpt: str, lora_source: str, output: str, pet_config: dict | None = None,
                          dtype: str = "float32") -> dict:
    """Merge ``lora_source`` into ``base_ckpt`` and write ``output`` atomically.

    Args:
        base_ckpt: MindFormers base checkpoint (LoRA tensors already in it are merged too).
        lora_source: a MindFormers LoRA checkpoint (``*.ckpt``) or a PEFT adapter directory.
        output: merged ``.ckpt`` to write; holds no LoRA tensors.
        pet_config: the training YAML's ``pet_config``; required for a ``.ckpt`` source. For an
            adapter directory the adapter's own alpha/rank are used and, when given, must agree.
        dtype: storage dtype of ``output`` (``MS_DTYPES``).

    Returns:
        ``{"merged_modules": int, "lora_alpha": float, "lora_rank": int, "scaling": float}``.

    Raises:
        FileNotFoundError: a source is missing.
        ValueError: no LoRA tensors, alpha/rank unknown or in disagreement, or shape errors
            (see ``to_hf.merge_lora``).
    """
    weights = load_ms_checkpoint(base_ckpt)
    if os.path.isdir(lora_source):
        from research.llama3.checkpoint.peft_adapter import load_peft_adapter

        lora, adapter_pet = load_peft_adapter(lora_source)
        alpha, rank = lora_scaling(adapter_pet, lora_source)
        if pet_config is not None and lora_scaling(pet_config, "pet_config") != (alpha, rank):
            raise ValueError(f"{lora_source}: adapter alpha/rank {(alpha, rank)} differ from the YAML's "
                             f"{lora_scaling(pet_config, 'pet_config')}")
    else:
        lora = {n: a for n, a in load_ms_checkpoint(lora_source).items() if is_lora_name(n)}
        alpha, rank = lora_scaling(pet_config, "the YAML")
    lora = {**{n: a for n, a in weights.items() if is_lora_name(n)}, **lora}
    if not lora:
        raise ValueError(f"no LoRA tensors in {lora_source} or {base_ckpt}")
    save_ms_checkpoint(merge_lora(weights, lora, alpha, rank), output, dtype)
    return {"merged_modules": len(lora) // 2, "lora_alpha": alpha, "lora_rank": rank, "scaling": alpha / rank}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m research.llama3.checkpoint.merge_lora", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the training YAML (model.model_config.pet_config)")
    parser.add_argument("--load_checkpoint", required=True, help="MindFormers base checkpoint")
    parser.add_argument("--lora_checkpoint", required=True, help="lora.ckpt or a PEFT adapter directory")
    parser.add_argument("--output", required=True, help="merged checkpoint to write (*.ckpt)")
    parser.add_argument("--dtype", default="float32", choices=MS_DTYPES, help="storage dtype")
    args = parser.parse_args(argv)
    with reported_as(UserError, FileNotFoundError, KeyError, ValueError):
        pet = read_model_config(args.config).get("pet_config")
        info = merge_lora_checkpoint(args.load_checkpoint, args.lora_checkpoint, args.output, pet, args.dtype)
    print(f"wrote {args.output}: {info['merged_modules']} modules merged with scaling "
          f"{info['lora_alpha']:g}/{info['lora_rank']} = {info['scaling']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
