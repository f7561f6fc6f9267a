"""LoRA adapters both ways between MindFormers (MindPet) checkpoints and PEFT adapter directories.

MindPet's ``LoRADense`` and PEFT's ``lora.Linear`` compute the same thing: ``W x + (alpha / r) B A
dropout(x)`` with A ``[r, in]`` and B ``[out, r]`` stored identically, so conversion only renames
(``research.llama3.checkpoint.weight_names``) and translates the settings:

=============================  =====================================
MindFormers ``pet_config``     PEFT ``LoraConfig``
=============================  =====================================
``lora_rank``                  ``r``
``lora_alpha``                 ``lora_alpha`` (scaling alpha / r; rsLoRA is refused)
``lora_dropout``               ``lora_dropout``
``target_modules`` (regex,     ``target_modules`` (HF module names; ``q_proj``, ``v_proj`` ...)
``re.match`` on cell names)
=============================  =====================================

CLI::

    # MindFormers lora.ckpt -> PEFT adapter dir (adapter_model.safetensors + adapter_config.json)
    python -m research.llama3.checkpoint.peft_adapter to_peft --config YAML --lora_checkpoint lora.ckpt --output_dir DIR
    # PEFT adapter dir -> MindFormers lora.ckpt (usable by eval.math --lora_checkpoint)
    python -m research.llama3.checkpoint.peft_adapter from_peft --adapter_dir DIR --output lora.ckpt [--config YAML]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from research.llama3.config.model_config import read_model_config
from research.llama3.checkpoint.ms_checkpoint import load_ms_checkpoint, save_ms_checkpoint
from research.llama3.checkpoint.weight_names import hf_to_ms_name, is_lora_name, linear_modules, ms_to_hf_name
from preprocess.cli import Parser, UserError, reported_as, run_main

__all__ = [
    "target_hf_modules", "peft_lora_config", "pet_config_from_adapter", "ms_lora_to_peft", "peft_to_ms_lora",
    "save_peft_adapter", "load_peft_adapter", "main",
]

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def target_hf_modules(target_modules: str, num_layers: int) -> list[str]:
    """HF module names LoRA goes on, for a MindFormers ``target_modules`` regex.

    MindFormers' ``lora_adapter`` applies the regex with ``re.match`` to cell names such as
    ``model.layers.3.attention.wq``; the same test is made here on every projection of every layer.

    Returns:
        Short names (``["q_proj", "v_proj"]``) when every layer gets the same projections, else
        full names (``model.layers.3.self_attn.q_proj`` ...), which PEFT matches exactly.

    Raises:
        ValueError: the regex matches no projection.
    """
    pattern = re.compile(target_modules)
    per_layer = []
    for layer in range(num_layers):
        per_layer.append([hf for ms, hf in linear_modules() if pattern.match(f"model.layers.{layer}.{ms}")])
    if not any(per_layer):
        raise ValueError(f"target_modules {target_modules!r} matches no Llama projection "
                         f"({', '.join(ms for ms, _ in linear_modules())})")
    if all(mods == per_layer[0] for mods in per_layer):
        return sorted(hf.rsplit(".", 1)[1] for hf in per_layer[0])
    return [f"model.layers.{layer}.{hf}" for layer, mods in enumerate(per_layer) for hf in mods]


def peft_lora_config(pet_config: dict, num_layers: int):
    """A ``peft.LoraConfig`` (causal LM, no bias) equivalent to a MindFormers ``pet_config``.

    Args:
        pet_config: the YAML's ``model.model_config.pet_config`` (``pet_type: lora``, ``lora_rank``,
            ``lora_alpha``, ``lora_dropout``, ``target_modules``).
        num_layers: decoder layers of the model.

    Raises:
        ValueError: ``pet_type`` is not ``lora``, or see ``target_hf_modules``.
        KeyError: ``lora_rank`` or ``target_modules`` missing.
    """
    from peft import LoraConfig

    if str(pet_config.get("pet_type", "lora")).lower() != "lora":
        raise ValueError(f"pet_type {pet_config.get('pet_type')!r} is not supported; only lora")
    return LoraConfig(
        r=int(pet_config["lora_rank"]),
        # MindPet's defaults (mindformers.pet.LoraConfig): alpha 8, dropout 0.
        lora_alpha=float(pet_config.get("lora_alpha", 8)),
        lora_dropout=float(pet_config.get("lora_dropout", 0.0)),
        target_modules=target_hf_modules(pet_config["target_modules"], num_layers),
        bias="none",
        task_type="CAUSAL_LM",
    )


def ms_lora_to_peft(lora: dict[str, np.ndarray]) -> dict:
    """MindFormers LoRA tensors -> PEFT adapter state (``base_model.model.…lora_A.weight`` keys, torch fp32).

    Non-LoRA entries are ignored.

    Raises:
        ValueError: no LoRA tensor, or a name without HF counterpart.
    """
    import torch

    state = {ms_to_hf_name(name, peft_prefix=True): torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
             for name, array in lora.items() if is_lora_name(name)}
    if not state:
        raise ValueError("no LoRA tensors (*.mindpet_delta_lora_a / *.mindpet_delta_lora_b) to convert")
    return state


def peft_to_ms_lora(state: dict) -> dict[str, np.ndarray]:
    """PEFT adapter state (as saved: ``…q_proj.lora_A.weight``) -> MindFormers names, float32 numpy.

    Raises:
        ValueError: a key is not a Llama LoRA tensor (e.g. PEFT ``modules_to_save`` or a bias).
    """
    out = {}
    for key, tensor in state.items():
        if not is_lora_name(key):
            raise ValueError(f"adapter tensor {key!r} is not a LoRA A/B matrix; only plain LoRA converts")
        out[hf_to_ms_name(key)] = tensor.detach().to("cpu").float().numpy()
    return out


def pet_config_from_adapter(config, lora: dict[str, np.ndarray]) -> dict:
    """MindFormers ``pet_config`` for a PEFT ``LoraConfig`` whose tensors are ``lora`` (MindFormers names).

    ``target_modules`` is rebuilt from the tensors actually present (what MindFormers needs to build
    the same cells): ``'.*wq|.*wv'`` when all layers carry the same projections, else exact names.

    Raises:
        ValueError: settings MindPet cannot express (rsLoRA, DoRA, biases, per-module ranks or
            alphas, ``fan_in_fan_out``, ``modules_to_save``) or a tensor rank differing from ``r``.
    """
    unsupported = {
        "use_rslora": bool(getattr(config, "use_rslora", False)),
        "use_dora": bool(getattr(config, "use_dora", False)),
        "bias": getattr(config, "bias", "none") != "none",
        "rank_pattern": bool(getattr(config, "rank_pattern", None)),
        "alpha_pattern": bool(getattr(config, "alpha_pattern", None)),
        "fan_in_fan_out": bool(getattr(config, "fan_in_fan_out", False)),
        "modules_to_save": bool(getattr(config, "modules_to_save", None)),
    }
    bad = [key for key, set_ in unsupported.items() if set_]
    if bad:
        raise ValueError(f"adapter uses {bad}, which MindPet LoRA cannot express")
    modules = sorted({name.rsplit(".", 1)[0] for name in lora})
    for name, array in lora.items():
        axis = 0 if name.endswith("_lora_a") else 1
        if array.shape[axis] != config.r:
            raise ValueError(f"{name} has rank {array.shape[axis]}, adapter_config says r={config.r}")
    by_layer: dict[str, set[str]] = {}
    for module in modules:
        _, _, layer, scope, proj = module.split(".")
        by_layer.setdefault(layer, set()).add(f"{scope}.{proj}")
    shared = next(iter(by_layer.values()))
    if all(projs == shared for projs in by_layer.values()):
        target = "|".join(f".*{proj.split('.')[1]}" for proj in sorted(shared))
    else:
        target = "|".join(re.escape(m) + "$" for m in modules)
    return {"pet_type": "lora", "lora_rank": int(config.r), "lora_alpha": float(config.lora_alpha),
            "lora_dropout": float(config.lora_dropout), "target_modules": target}


def save_peft_adapter(lora: dict[str, np.ndarray], config, out_dir: str | os.PathLike) -> Path:
    """Write a PEFT adapter directory (``adapter_model.safetensors`` + ``adapter_config.json``).

    Loadable with ``peft.PeftModel.from_pretrained(base_model, out_dir)``. Files are written in a
    temporary directory beside ``out_dir`` and moved in one by one, so each appears whole.

    Args:
        lora: MindFormers LoRA tensors (``*.mindpet_delta_lora_a/b``).
        config: the ``peft.LoraConfig`` (e.g. from ``peft_lora_config``).
        out_dir: created if needed; existing adapter files are replaced.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=out.parent))
    try:
        config.save_pretrained(tmp)
        save_file(ms_lora_to_peft(lora), tmp / ADAPTER_WEIGHTS, metadata={"format": "pt"})
        for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_peft_adapter(adapter_dir: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a PEFT LoRA adapter directory as MindFormers LoRA tensors and ``pet_config``.

    Returns:
        ``(lora, pet_config)``: MindFormers name -> float32 array, and the equivalent ``pet_config``.

    Raises:
        FileNotFoundError: ``adapter_config.json`` or ``adapter_model.safetensors`` is missing
            (``.bin`` adapters are not read: they are pickles).
        ValueError: not a LoRA adapter, or see ``pet_config_from_adapter`` / ``peft_to_ms_lora``.
    """
    from peft import LoraConfig
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (adapter_dir / name).is_file():
            raise FileNotFoundError(f"{adapter_dir / name} not found (a PEFT adapter directory holds "
                                    f"{ADAPTER_CONFIG} and {ADAPTER_WEIGHTS})")
    config = LoraConfig.from_pretrained(adapter_dir)
    if str(config.peft_type.value if hasattr(config.peft_type, "value") else config.peft_type) != "LORA":
        raise ValueError(f"{adapter_dir}: peft_type {config.peft_type} is not LORA")
    lora = peft_to_ms_lora(load_file(adapter_dir / ADAPTER_WEIGHTS))
    return lora, pet_config_from_adapter(config, lora)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m research.llama3.checkpoint.peft_adapter", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    to_peft = sub.add_parser("to_peft", help="MindFormers LoRA checkpoint -> PEFT adapter directory")
    to_peft.add_argument("--config", required=True, help="MindFormers YAML (pet_config, num_layers)")
    to_peft.add_argument("--lora_checkpoint", required=True, help="lora.ckpt (or a full checkpoint holding LoRA)")
    to_peft.add_argument("--output_dir", required=True, help="adapter directory to write")
    from_peft = sub.add_parser("from_peft", help="PEFT adapter directory -> MindFormers LoRA checkpoint")
    from_peft.add_argument("--adapter_dir", required=True, help="directory with adapter_config.json + safetensors")
    from_peft.add_argument("--output", required=True, help="lora.ckpt to write")
    from_peft.add_argument("--config", default=None,
                           help="MindFormers YAML to check against: its lora_rank/lora_alpha must match the "
                                "adapter, since eval scales the delta by the YAML's alpha / rank")
    args = parser.parse_args(argv)
    with reported_as(UserError, FileNotFoundError, KeyError, ValueError):
        if args.command == "to_peft":
            model_config = read_model_config(args.config)
            lora = {n: a for n, a in load_ms_checkpoint(args.lora_checkpoint).items() if is_lora_name(n)}
            config = peft_lora_config(model_config["pet_config"], int(model_config["num_layers"]))
            save_peft_adapter(lora, config, args.output_dir)
            print(f"wrote {args.output_dir}: {len(lora)} tensors, r={config.r}, alpha={config.lora_alpha}, "
                  f"target_modules={config.target_modules}")
        else:
            lora, pet = load_peft_adapter(args.adapter_dir)
            if args.config:
                yaml_pet = read_model_config(args.config).get("pet_config") or {}
                for key in ("lora_rank", "lora_alpha"):
                    if float(yaml_pet.get(key, -1)) != float(pet[key]):
                        raise ValueError(f"{args.config}: pet_config.{key}={yaml_pet.get(key)} but the adapter "
                                         f"has {pet[key]}; evaluation would scale the delta wrongly")
            save_ms_checkpoint(lora, args.output)
            print(f"wrote {args.output}: {len(lora)} tensors; pet_config {pet}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
