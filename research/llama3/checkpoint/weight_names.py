"""Parameter-name mapping between MindFormers Llama and Hugging Face Llama.

The MindFormers side uses the ``Parameter.name`` values stored in MindSpore
checkpoints (what ``mindspore.save_checkpoint(net, ...)`` writes), e.g.
``model.layers.3.attention.wq.weight``. These are *not* the keys of
``PetModel.parameters_and_names()``, which carry wrapper prefixes such as
``network.network.``; use ``param.name`` instead.

The Hugging Face side uses ``transformers.LlamaForCausalLM.state_dict()``
keys, and for LoRA the PEFT convention ``...q_proj.lora_A.weight`` /
``...q_proj.lora_B.weight``. Tensors map one-to-one with no transposition or
permutation: MindFormers ``Linear`` stores ``[out, in]`` like ``torch.nn.Linear``,
LoRA A is ``[rank, in]`` and LoRA B is ``[out, rank]`` on both sides.

Qwen2 (``LlamaDims.qkv_has_bias``) adds ``wq/wk/wv.bias`` <-> ``q_proj/k_proj/v_proj.bias``, the only
biases either family has (MindFormers' ``qkv_has_bias``; HF ``Qwen2Attention``).
"""

from __future__ import annotations

import re

__all__ = ["ms_to_hf_name", "hf_to_ms_name", "is_lora_name", "linear_modules", "PEFT_PREFIX"]

# PEFT wraps the base model twice (PeftModel -> LoraModel -> LlamaForCausalLM),
# so adapter files store keys under this prefix.
PEFT_PREFIX = "base_model.model."

# Per-layer module names, MindFormers -> HF.
_LAYER_MODULES_MS_TO_HF = {
    "attention.wq": "self_attn.q_proj",
    "attention.wk": "self_attn.k_proj",
    "attention.wv": "self_attn.v_proj",
    "attention.wo": "self_attn.o_proj",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w2": "mlp.down_proj",
    "feed_forward.w3": "mlp.up_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_LAYER_MODULES_HF_TO_MS = {v: k for k, v in _LAYER_MODULES_MS_TO_HF.items()}

# Norms have no LoRA adapters, only a weight.
_NORM_MODULES_MS = {"attention_norm", "ffn_norm"}

_LEAF_MS_TO_HF = {
    "weight": "weight",
    "mindpet_delta_lora_a": "lora_A.weight",
    "mindpet_delta_lora_b": "lora_B.weight",
}
_LEAF_HF_TO_MS = {v: k for k, v in _LEAF_MS_TO_HF.items()}
# Leaves allowed on q/k/v only: Qwen2's projection biases (o_proj and the MLP have none).
_QKV_MODULES_MS = {"attention.wq", "attention.wk", "attention.wv"}
_BIAS = "bias"

_GLOBAL_MS_TO_HF = {
    "model.tok_embeddings.embedding_weight": "model.embed_tokens.weight",
    "model.norm_out.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
}
_GLOBAL_HF_TO_MS = {v: k for k, v in _GLOBAL_MS_TO_HF.items()}


def _layer_re(modules, leaves) -> re.Pattern[str]:
    """``model.layers.<i>.<module>.<leaf>`` for the given module suffixes and leaf names (or the bias)."""
    return re.compile(rf"^model\.layers\.(\d+)\.({'|'.join(map(re.escape, modules))})\."
                      rf"({'|'.join(map(re.escape, (*leaves, _BIAS)))})$")


_MS_LAYER_RE = _layer_re(_LAYER_MODULES_MS_TO_HF, _LEAF_MS_TO_HF)
_HF_LAYER_RE = _layer_re(_LAYER_MODULES_HF_TO_MS, _LEAF_HF_TO_MS)


def linear_modules() -> list[tuple[str, str]]:
    """The projections of one decoder layer that LoRA can adapt, as (MindFormers, HF) module suffixes.

    E.g. ``("attention.wq", "self_attn.q_proj")``; prefix ``model.layers.N.`` for a full module name.
    """
    return [(ms, hf) for ms, hf in _LAYER_MODULES_MS_TO_HF.items() if ms not in _NORM_MODULES_MS]


def is_lora_name(name: str) -> bool:
    """True for a LoRA adapter tensor name on either side (MindFormers or HF/PEFT)."""
    return (
        name.endswith(".mindpet_delta_lora_a")
        or name.endswith(".mindpet_delta_lora_b")
        or name.endswith(".lora_A.weight")
        or name.endswith(".lora_B.weight")
    )


def ms_to_hf_name(name: str, peft_prefix: bool = False) -> str:
    """Map a MindFormers Llama parameter name to its Hugging Face name.

    Args:
        name: a MindFormers ``Parameter.name``, e.g.
            ``model.layers.0.attention.wq.mindpet_delta_lora_a``.
        peft_prefix: prepend ``base_model.model.`` (the key layout of a PEFT
            adapter file). Only meaningful for LoRA names but allowed for all.

    Returns:
        The HF name, e.g. ``model.layers.0.self_attn.q_proj.lora_A.weight``.

    Raises:
        ValueError: ``name`` is not a known MindFormers Llama parameter (the
            message names it), e.g. optimizer state such as ``adam_m.*``.
    """
    hf = _GLOBAL_MS_TO_HF.get(name)
    if hf is None:
        match = _MS_LAYER_RE.match(name)
        if match is None:
            raise ValueError(f"unmapped MindFormers parameter name: {name!r}")
        layer, module, leaf = match.groups()
        if module in _NORM_MODULES_MS and leaf != "weight":
            raise ValueError(f"unmapped MindFormers parameter name: {name!r} (norms carry no LoRA)")
        if leaf == _BIAS and module not in _QKV_MODULES_MS:
            raise ValueError(f"unmapped MindFormers parameter name: {name!r} (only wq/wk/wv carry a bias)")
        hf = f"model.layers.{layer}.{_LAYER_MODULES_MS_TO_HF[module]}.{_LEAF_MS_TO_HF.get(leaf, leaf)}"
    return PEFT_PREFIX + hf if peft_prefix else hf


def hf_to_ms_name(name: str) -> str:
    """Map a Hugging Face / PEFT Llama parameter name to its MindFormers name.

    A leading ``base_model.model.`` (PEFT adapter layout) is accepted and
    dropped; PEFT's adapter-named form ``lora_A.default.weight`` is not.

    Args:
        name: e.g. ``model.layers.0.mlp.gate_proj.weight`` or
            ``base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight``.

    Returns:
        The MindFormers ``Parameter.name``, e.g. ``model.layers.0.feed_forward.w1.weight``.

    Raises:
        ValueError: ``name`` has no MindFormers counterpart (the message names it).
    """
    key = name[len(PEFT_PREFIX):] if name.startswith(PEFT_PREFIX) else name
    ms = _GLOBAL_HF_TO_MS.get(key)
    if ms is not None:
        return ms
    match = _HF_LAYER_RE.match(key)
    if match is None:
        raise ValueError(f"unmapped Hugging Face parameter name: {name!r}")
    layer, module, leaf = match.groups()
    ms_module = _LAYER_MODULES_HF_TO_MS[module]
    if ms_module in _NORM_MODULES_MS and leaf != "weight":
        raise ValueError(f"unmapped Hugging Face parameter name: {name!r} (norms carry no LoRA)")
    if leaf == _BIAS and ms_module not in _QKV_MODULES_MS:
        raise ValueError(f"unmapped Hugging Face parameter name: {name!r} (only q/k/v_proj carry a bias)")
    return f"model.layers.{layer}.{ms_module}.{_LEAF_HF_TO_MS.get(leaf, leaf)}"
