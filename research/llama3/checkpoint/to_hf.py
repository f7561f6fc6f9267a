"""Turn MindFormers Llama checkpoints (optionally with LoRA) into a
``transformers.LlamaForCausalLM``, or ``Qwen2ForCausalLM`` for the qwen2 family (``dims.qkv_has_bias``).

LoRA deltas are merged into the base weights, so the result is a plain HF
model that needs neither PEFT nor MindSpore at inference time.

A library: the command that writes such a model to an HF directory is
``python -m research.llama3.checkpoint.convert_hf to_hf`` (``mathlora convert hf to_hf``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from preprocess.cli import Parser
from research.llama3.config.model_config import LlamaDims
from research.llama3.checkpoint.ms_checkpoint import load_ms_checkpoint
from research.llama3.checkpoint.weight_names import ms_to_hf_name

__all__ = ["load_ms_checkpoint", "merge_lora", "build_hf_model", "save_hf_model"]

_LORA_A = ".mindpet_delta_lora_a"
_LORA_B = ".mindpet_delta_lora_b"


def merge_lora(weights: dict[str, np.ndarray], lora: dict[str, np.ndarray],
               lora_alpha: float, lora_rank: int) -> dict[str, np.ndarray]:
    """Fold MindPet LoRA deltas into base weights: ``W + (alpha / r) * B @ A``.

    Args:
        weights: MindFormers name -> float32 base tensor; not modified.
        lora: MindFormers names ending in ``.mindpet_delta_lora_a`` (``[r, in]``)
            and ``.mindpet_delta_lora_b`` (``[out, r]``); other names are ignored.
        lora_alpha: LoRA alpha used in training.
        lora_rank: LoRA rank used in training; must match the tensors.

    Returns:
        A new dict with the merged ``.weight`` tensors (float32) and no LoRA entries.

    Raises:
        ValueError: an A without its B (or vice versa), a delta whose base
            weight is missing, or shapes inconsistent with ``lora_rank`` / the base.
    """
    merged = {name: w for name, w in weights.items() if not name.endswith((_LORA_A, _LORA_B))}
    modules_a = {n[: -len(_LORA_A)] for n in lora if n.endswith(_LORA_A)}
    modules_b = {n[: -len(_LORA_B)] for n in lora if n.endswith(_LORA_B)}
    if modules_a != modules_b:
        raise ValueError(f"unpaired LoRA tensors for modules {sorted(modules_a ^ modules_b)}")
    scaling = float(lora_alpha) / float(lora_rank)
    for module in sorted(modules_a):
        base_name = module + ".weight"
        if base_name not in merged:
            raise ValueError(f"LoRA delta for {module!r} but no base weight {base_name!r}")
        base = merged[base_name]
        lora_a = np.asarray(lora[module + _LORA_A], dtype=np.float32)
        lora_b = np.asarray(lora[module + _LORA_B], dtype=np.float32)
        out_dim, in_dim = base.shape
        if lora_a.shape != (lora_rank, in_dim) or lora_b.shape != (out_dim, lora_rank):
            raise ValueError(
                f"LoRA shapes for {module!r}: A {lora_a.shape}, B {lora_b.shape}; expected "
                f"A {(lora_rank, in_dim)}, B {(out_dim, lora_rank)} for lora_rank={lora_rank}"
            )
        # float64 product: the delta can be tiny next to W and float32 rounding would eat it.
        delta = (lora_b.astype(np.float64) @ lora_a.astype(np.float64)) * scaling
        merged[base_name] = (base.astype(np.float64) + delta).astype(np.float32)
    return merged


def _no_init():
    # Every tensor is overwritten by a strict load, so random init is wasted time.
    try:
        from transformers.modeling_utils import no_init_weights
    except ImportError:  # private helper; fall back to the slow path if it moves
        return contextlib.nullcontext()
    return no_init_weights()


def build_hf_model(base_ckpt: str, dims: LlamaDims, lora_ckpt: str | None = None,
                   lora_alpha: float = 16, lora_rank: int = 8):
    """Build a float32 ``transformers`` Llama (or Qwen2, per ``dims.family``) from MindFormers checkpoints.

    Args:
        base_ckpt: MindFormers checkpoint with the base weights (e.g. from
            ``convert_gguf_to_mindformers``). LoRA deltas stored in it (a
            full-network checkpoint from a LoRA run) are merged too.
        dims: model dimensions; ``dims.to_hf_config()`` defines the model.
        lora_ckpt: optional checkpoint holding ``*.mindpet_delta_lora_a/b``
            tensors; they override deltas of the same name in ``base_ckpt``.
            Its other entries are ignored.
        lora_alpha, lora_rank: LoRA hyper-parameters of the run; the delta is
            scaled by ``lora_alpha / lora_rank`` as MindPet's ``LoRADense`` does.

    Returns:
        The model in eval mode, float32, on CPU. If ``dims.tie_word_embeddings``
        but the checkpoint carries an ``lm_head.weight`` that differs from the
        embedding, the model is untied so that head is kept.

    Raises:
        FileNotFoundError: a checkpoint is missing.
        ValueError: a ``model.*``/``lm_head.*`` name has no HF counterpart,
            ``lora_ckpt`` holds no LoRA tensors, LoRA shapes mismatch, or the
            tensors do not fit ``dims`` (missing, unexpected or mis-shaped keys).
    """
    import torch
    from transformers import AutoModelForCausalLM

    weights = load_ms_checkpoint(base_ckpt)
    lora = {n: w for n, w in weights.items() if n.endswith((_LORA_A, _LORA_B))}
    if lora_ckpt is not None:
        extra = {n: w for n, w in load_ms_checkpoint(lora_ckpt).items() if n.endswith((_LORA_A, _LORA_B))}
        if not extra:
            raise ValueError(f"no LoRA tensors (*{_LORA_A} / *{_LORA_B}) in {lora_ckpt}")
        lora.update(extra)
    weights = merge_lora(weights, lora, lora_alpha, lora_rank) if lora else weights

    state = {ms_to_hf_name(name): torch.from_numpy(array) for name, array in weights.items()}
    config = dims.to_hf_config()
    embed = state.get("model.embed_tokens.weight")
    head = state.get("lm_head.weight")
    if config.tie_word_embeddings and head is not None and embed is not None and not torch.equal(head, embed):
        config.tie_word_embeddings = False
    if config.tie_word_embeddings and embed is not None:
        # state_dict() lists the shared head too; feeding it the embedding keeps a strict load possible.
        state["lm_head.weight"] = embed

    with _no_init():
        model = AutoModelForCausalLM.from_config(config)
    model = model.to(torch.float32)
    reference = model.state_dict()
    missing, unexpected = sorted(set(reference) - set(state)), sorted(set(state) - set(reference))
    if missing or unexpected:
        raise ValueError(f"checkpoint does not match {dims}: missing={missing[:8]} unexpected={unexpected[:8]}")
    wrong = [(k, tuple(v.shape)) for k, v in state.items() if v.shape != reference[k].shape]
    if wrong:
        raise ValueError(f"checkpoint shapes do not match dims: {wrong[:8]}")
    model.load_state_dict(state, strict=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.eval()
    return model


def save_hf_model(model, tokenizer, out_dir: str | os.PathLike) -> Path:
    """Save ``model`` (safetensors + config + generation config) and ``tokenizer``.

    Args:
        model: a ``transformers`` model, e.g. from ``build_hf_model``.
        tokenizer: a ``transformers`` tokenizer, or ``None`` to save the model only.
        out_dir: directory; created if needed, existing files of the same name overwritten.

    Returns:
        ``out_dir`` as a ``Path``; loadable with ``AutoModelForCausalLM.from_pretrained``
        / ``AutoTokenizer.from_pretrained``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m research.llama3.checkpoint.to_hf``: this module's description and the command to use
    (exit status 2 unless ``--help``)."""
    Parser(prog="python -m research.llama3.checkpoint.to_hf", description=__doc__).parse_args(argv)
    print("error: research.llama3.checkpoint.to_hf is a library; run "
          "python -m research.llama3.checkpoint.convert_hf to_hf --help", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
