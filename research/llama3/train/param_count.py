"""Parameter counts: of a built model (:func:`count_parameters`, for MindSpore and PyTorch alike) and of a
MindFormers Llama + LoRA from its YAML, without building (or allocating) it (:func:`lora_param_counts`).

The contest's low-parameter term uses trainable / base parameters (data README: score =
(1 - trainable/8,030M) x 0.3 + accuracy x 0.7); for the reference LoRA on Llama3-8B that is
3,407,872 / 8,030,261,248 = 0.000424.
"""
import re
from collections.abc import Iterable


def count_parameters(parameters: Iterable[tuple[int, bool]]) -> dict:
    """``{"trainable", "base", "total", "ratio"}`` from ``(element count, trainable)`` per parameter.

    ``base`` = total - trainable (the frozen model); ``ratio`` = trainable / base, the contest's
    low-parameter ratio (data README: score uses 1 - trainable/8,030M, the base model's size). Same
    definitions as :func:`lora_param_counts`.
    """
    total = trainable = 0
    for size, is_trainable in parameters:
        total += size
        trainable += size if is_trainable else 0
    base = total - trainable
    return {"trainable": trainable, "base": base, "total": total, "ratio": trainable / base if base else 0.0}


def _linear_shapes(mc: dict) -> dict[str, tuple[int, int]]:
    """(in, out) of each projection in one decoder layer, by MindFormers cell name."""
    hidden, heads = int(mc["hidden_size"]), int(mc["num_heads"])
    kv_dim = int(mc.get("n_kv_heads") or heads) * (hidden // heads)
    ffn = int(mc["intermediate_size"])
    return {"wq": (hidden, hidden), "wk": (hidden, kv_dim), "wv": (hidden, kv_dim), "wo": (hidden, hidden),
            "w1": (hidden, ffn), "w2": (ffn, hidden), "w3": (hidden, ffn)}


def lora_param_counts(model_config: dict) -> dict:
    """Return ``{"trainable", "base", "total", "ratio"}`` for a YAML ``model.model_config``.

    ``base`` counts the Llama weights (embedding, norms, projections, q/k/v biases with
    ``qkv_has_bias`` (Qwen2), lm_head unless ``tie_word_embeddings``); ``trainable`` the LoRA matrices A [rank, in] and B [out, rank] of every
    projection whose MindFormers name (``model.layers.N.attention.wq`` ...) matches ``target_modules``
    (a regex applied with ``re.match``, as MindFormers' ``lora_adapter`` applies it); ``total`` = base + trainable; ``ratio`` = trainable / base.
    Without ``pet_config`` nothing is trainable.
    """
    mc = dict(model_config)
    hidden, vocab, layers = int(mc["hidden_size"]), int(mc["vocab_size"]), int(mc["num_layers"])
    shapes = _linear_shapes(mc)
    per_layer = 2 * hidden + sum(i * o for i, o in shapes.values())
    if mc.get("qkv_has_bias"):
        per_layer += sum(shapes[name][1] for name in ("wq", "wk", "wv"))
    base = vocab * hidden * (1 if mc.get("tie_word_embeddings") else 2) + hidden + layers * per_layer
    trainable = 0
    pet = mc.get("pet_config") or {}
    if pet:
        rank = int(pet["lora_rank"])
        for name, (fan_in, fan_out) in shapes.items():
            scope = "feed_forward" if name[1:].isdigit() else "attention"
            if re.match(pet["target_modules"], f"model.layers.0.{scope}.{name}"):
                trainable += layers * rank * (fan_in + fan_out)
    return {"trainable": trainable, "base": base, "total": base + trainable,
            "ratio": trainable / base if base else 0.0}
