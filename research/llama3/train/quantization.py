r"""QLoRA for the torch path: a bitsandbytes-quantized, frozen base under a PEFT LoRA, and the merge back.

Kinds (``--quantization`` of ``research.llama3.train.torch_finetune`` and of the runner):

=========  ========================================================================================
``none``   the base in the run's dtype (float32 on CPU, the YAML's ``compute_dtype`` on CUDA)
``nf4``    QLoRA (Dettmers et al. 2023): every decoder ``nn.Linear`` becomes ``bnb.nn.Linear4bit``,
           4-bit NormalFloat in blocks of 64 with double quantization (the block scales are themselves
           8-bit); matmuls dequantize to the compute dtype. Embeddings, norms and ``lm_head`` stay unquantized.
``int8``   LLM.int8 (``bnb.nn.Linear8bitLt``): row-wise int8 weights; activations are quantized per
           row too (float16 on the way), with outlier columns above 6.0 kept in 16 bits.
=========  ========================================================================================

After loading, ``peft.prepare_model_for_kbit_training`` casts the unquantized parameters to float32
(and, with ``gradient_checkpointing``, enables it); the LoRA layers PEFT puts on the quantized layers
stay float32. Quantizing a given float model goes through a temporary ``save_pretrained`` directory,
because transformers quantizes while loading; an HF directory base is quantized straight from disk,
without a full-precision copy in memory.

Merge (dequantize, merge, save)::

    python -m research.llama3.train.quantization merge --base_dir HF_BASE --adapter_dir RUN/adapter \
        --quantization nf4 --output_dir MERGED [--dtype bfloat16]

quantizes ``HF_BASE`` exactly as training did (the same weights give the same codes), dequantizes it
(``PreTrainedModel.dequantize``), loads the adapter and folds ``W' + (alpha / r) B A`` in float32
(``merge_and_unload``), then saves safetensors. So the merged model computes what the adapter model
computed in training, against the dequantized weights ``W'`` the adapter learned to correct, not against the
original ``W``. A MindFormers base checkpoint is first made an HF directory with
``python -m research.llama3.checkpoint.convert_hf to_hf``. Needs ``bitsandbytes`` (0.50.2; its CPU backend
runs both kinds, slowly) and ``peft``.
"""

from __future__ import annotations

import os
import sys
import tempfile

from preprocess.cli import Parser, UserError, reported_as, run_main

__all__ = ["QUANTIZATIONS", "bnb_config", "load_quantized", "prepare_for_lora", "quantized_numel",
           "merge_adapter", "main"]

# torch, transformers and bitsandbytes are imported where used: the runner reads QUANTIZATIONS while
# checking options, before any work.
QUANTIZATIONS = ("none", "nf4", "int8")


def bnb_config(kind: str, compute_dtype: torch.dtype):
    """``transformers.BitsAndBytesConfig`` for ``kind`` (``nf4`` or ``int8``; see the module docstring).

    Raises:
        ValueError: ``kind`` is not a quantization (``none`` included: there is nothing to configure).
    """
    from transformers import BitsAndBytesConfig

    if kind == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=compute_dtype)
    if kind == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ValueError(f"quantization must be one of {QUANTIZATIONS[1:]}, got {kind!r}")


def load_quantized(base, kind: str, dtype: torch.dtype, device: str = "cpu", attn_implementation: str = "sdpa"):
    """A transformers causal LM (Llama, Qwen2) whose decoder linears are quantized to ``kind``, on ``device``.

    Args:
        base: an HF model directory (``save_pretrained`` layout), or a float transformers model (saved
            to a temporary directory first: transformers quantizes while loading).
        kind: ``nf4`` or ``int8``.
        dtype: compute dtype of the 4-bit matmuls and dtype of the unquantized parameters as loaded.
        device: ``cpu`` or ``cuda[:N]``; the whole model is placed there.
        attn_implementation: transformers attention backend.

    Raises:
        ValueError: unknown ``kind``.
        ImportError: bitsandbytes is not installed.
    """
    from transformers import AutoModelForCausalLM

    config = bnb_config(kind, dtype)
    if isinstance(base, (str, os.PathLike)):
        return AutoModelForCausalLM.from_pretrained(base, quantization_config=config, dtype=dtype,
                                                device_map={"": device}, attn_implementation=attn_implementation)
    with tempfile.TemporaryDirectory(prefix="qlora_base_") as tmp:
        base.save_pretrained(tmp)
        return load_quantized(tmp, kind, dtype, device, attn_implementation)


def prepare_for_lora(model, gradient_checkpointing: bool = False):
    """``peft.prepare_model_for_kbit_training``: frozen base, unquantized parameters in float32, and
    gradient checkpointing (with input gradients for it) when asked."""
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                           gradient_checkpointing_kwargs={"use_reentrant": False})


def quantized_numel(param) -> int:
    """Elements of the weight a parameter stands for: a 4-bit ``Params4bit`` packs two codes a byte
    into a ``[n / 2, 1]`` uint8 tensor, so its own ``numel`` is half the weight's; its ``quant_state``
    keeps the original shape. Other parameters (int8 ones included) count as themselves."""
    state = getattr(param, "quant_state", None)
    return state.shape.numel() if state is not None else param.numel()


def merge_adapter(base_dir: str, adapter_dir: str, output_dir: str, kind: str,
                  dtype: torch.dtype | None = None) -> str:
    """Merge a LoRA adapter trained on a ``kind``-quantized base: quantize ``base_dir`` as training did,
    dequantize, merge in float32, save ``dtype`` safetensors (and the config) to ``output_dir``.

    ``kind`` ``none`` merges into the float base directly; ``dtype`` None saves float32. Returns ``output_dir``.

    Raises:
        ValueError: unknown ``kind``.
        FileNotFoundError: ``base_dir`` or ``adapter_dir`` is not a directory.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    for name, path in (("base_dir", base_dir), ("adapter_dir", adapter_dir)):
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{name} {path}: not a directory")
    if kind not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {kind!r}")
    if kind == "none":
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    else:
        model = load_quantized(base_dir, kind, torch.float32).dequantize()
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged.to(dtype or torch.float32).save_pretrained(output_dir)
    return output_dir


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m research.llama3.train.quantization", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge", help="dequantize the base, merge a LoRA adapter, save safetensors")
    merge.add_argument("--base_dir", required=True, help="HF directory of the float base the run quantized")
    merge.add_argument("--adapter_dir", required=True, help="PEFT adapter (RUN/adapter)")
    merge.add_argument("--quantization", choices=QUANTIZATIONS, required=True, help="the run's --quantization")
    merge.add_argument("--output_dir", required=True, help="merged HF model directory")
    merge.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                       help="dtype of the saved weights (the merge itself is float32)")
    args = parser.parse_args(argv)
    import torch

    with reported_as(UserError, FileNotFoundError, ValueError):
        out = merge_adapter(args.base_dir, args.adapter_dir, args.output_dir, args.quantization,
                            getattr(torch, args.dtype))
    print(f"merged {args.adapter_dir} into the {args.quantization}-dequantized {args.base_dir}: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
