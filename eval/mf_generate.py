"""Batched generation with MindFormers' own ``LlamaForCausalLM`` (MindSpore).

Two ways, chosen by :func:`resolve_use_past`:

* **Incremental (Ascend)**: the YAML's ``use_past: True`` (KV cache, paged attention blocks) and
  MindFormers' own ``model.generate`` (its greedy ``argmax`` or its numpy sampler, seeded), as the
  predict YAML ``configs/llama3_8b/predict_lora_910b_1p.yaml`` sets it up. Prompts of a batch are
  right-padded with ``pad_token_id``; MindFormers finds each row's length as "last non-pad + 1"
  (``get_valid_length_each_example``) and returns prompt + new tokens per row.
* **Recomputation (CPU)**: MindFormers' incremental decoding cannot run on CPU:
  ``ApplyRotaryPosEmb``, ``ReshapeAndCache`` and ``PagedAttention`` have no CPU kernels, and its
  sampler needs ``ArgMaxExt`` / ``TopkExt``. So each new token is predicted by a full forward pass
  over a fixed ``[batch, seq_length]`` buffer, and the next token is chosen in numpy
  (:mod:`eval.sampling`). The rest of this docstring describes this way.

Prompts are right-padded: row ``b`` holds its prompt and the tokens generated so far at positions
``0 .. n_b - 1`` and the pad id after them. Causal attention means positions after ``n_b`` cannot
change the logits at ``n_b - 1``, so a padded row decodes exactly as it would alone, with the
position ids it would have alone. Only those logits are computed: passing ``batch_valid_length``
makes MindFormers gather the hidden state at ``n_b - 1`` before ``lm_head`` (its ``pre_gather``),
so the ``[B, S, V]`` logits tensor is never built.

The forward pass runs in MindSpore's graph mode (compiled once per input shape, ~10 s for a
small model, then ~30x faster than PyNative on CPU). Every call of a generation therefore feeds
the same shape ``[rows, seq_length]``: finished rows stay in the batch and the last batch is
filled up with copies of a real row whose output is discarded.

MindFormers hides every input token equal to ``pad_token_id`` as an attention key
(``LlamaModel`` builds its mask from ``input_ids != pad_token_id``); the pad id must be a token
that never occurs in prompts or generations (the tiny and SmolLM2 configs use 0, ``<|endoftext|>``).
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from eval.sampling import Sampling, greedy, sample

if TYPE_CHECKING:
    from research.llama3.config.config_check import ModelYaml

# Settings without which LlamaForCausalLM cannot run forward on CPU (see tests/research/checkpoint/test_convert_smollm2.py).
# is_dynamic belongs to use_past (paged attention); with it the pre-gather calls mint.cumsum, whose
# CumsumExt has no CPU kernel (found by the predict YAML's CPU dry run, tests/research/train/test_ascend_dry_run.py).
CPU_OVERRIDES = {
    "compute_dtype": "float32", "layernorm_compute_type": "float32", "softmax_compute_type": "float32",
    "rotary_dtype": "float32", "param_init_type": "float32",
    "use_flash_attention": False, "fused_rms_norm": False, "use_rope_slice": True, "use_past": False,
    "is_dynamic": False,
}


def resolve_use_past(model_config: dict, use_past: bool | None, device_target: str) -> bool:
    """Whether to decode incrementally with MindFormers' KV cache.

    Args:
        model_config: the YAML's ``model.model_config``; its ``use_past`` is the default.
        use_past: ``None`` = automatic: the YAML's ``use_past`` on Ascend, recomputation elsewhere
            (so the predict YAML also works on CPU); ``True``/``False`` force it.
        device_target: MindSpore's ``device_target`` (``"Ascend"``, ``"CPU"``, ``"GPU"``).

    Raises:
        ValueError: ``use_past=True`` on a device other than Ascend (no kernels, see module doc).
    """
    if use_past is None:
        return bool(model_config.get("use_past")) and device_target == "Ascend"
    if use_past and device_target != "Ascend":
        raise ValueError(f"use_past (MindFormers' KV cache) needs an Ascend device; MindSpore's device target "
                         f"is {device_target}, where ApplyRotaryPosEmb, ReshapeAndCache and PagedAttention have "
                         f"no kernels; generation recomputes the sequence there without use_past")
    return bool(use_past)


def generation_kwargs(max_new_tokens: int, sampling: Sampling | None, eos_ids: set[int], pad_id: int) -> dict:
    """Keyword arguments of MindFormers' ``model.generate`` (``GenerationConfig`` fields) for one call.

    Greedy: ``do_sample=False``. Sampling: temperature and top-p only (``top_k=0``: MindFormers'
    default ``top_k=50`` would also cut the distribution), as :mod:`eval.sampling` does on CPU;
    MindFormers draws with ``numpy.random`` after ``np.random.seed(seed)``. ``top_p=1`` is passed
    as ``None``: MindFormers' ``TopPLogitsWarper`` keeps tokens whose cumulative probability is
    ``< top_p``, which at 1.0 drops the tail tokens whose float cumulative sum reaches 1.0. Its
    top-p also drops the token that crosses ``top_p``, which transformers and
    :func:`eval.sampling.top_p_probs` keep (tests/eval/test_eval_mf_use_past.py).
    """
    kwargs = {"max_new_tokens": max_new_tokens, "eos_token_id": sorted(eos_ids), "pad_token_id": pad_id,
              "repetition_penalty": 1.0, "num_beams": 1}
    if sampling is None:
        return {**kwargs, "do_sample": False, "temperature": 1.0}
    return {**kwargs, "do_sample": True, "temperature": sampling.temperature,
            "top_p": sampling.top_p if sampling.top_p < 1 else None, "top_k": 0}


def right_pad(rows: Sequence[Sequence[int]], pad_id: int) -> np.ndarray:
    """``[B, max len]`` int32 array of ``rows`` right-padded with ``pad_id`` (MindFormers' generate input)."""
    out = np.full((len(rows), max(len(r) for r in rows)), pad_id, dtype=np.int32)
    for b, r in enumerate(rows):
        out[b, :len(r)] = r
    return out


def new_tokens(output: Sequence[int], prompt_length: int, eos_ids: set[int]) -> list[int]:
    """The generated part of one row of MindFormers' generate output (prompt + new tokens, the
    stopping EOS included), without the prompt and without anything from the first EOS on."""
    out = []
    for token in list(output)[prompt_length:]:
        if int(token) in eos_ids:
            break
        out.append(int(token))
    return out


class MindFormersLM:
    """A MindFormers ``LlamaForCausalLM`` ready for :func:`mf_generate`.

    Args:
        model_config: the YAML's ``model.model_config`` mapping (MindFormers ``LlamaConfig`` keys).
        load_checkpoint: MindFormers base checkpoint (``.ckpt``); every base parameter must load.
        lora_checkpoint: optional LoRA-only checkpoint; the LoRA cells of ``pet_config`` are then
            built and must all be filled by it (MindPet's ``LoRADense`` applies ``alpha / rank``).
        seq_length: buffer length (prompt + new tokens); default: the YAML's ``seq_length``.
        graph_mode: run the forward pass compiled (``GRAPH_MODE``); the context mode is switched
            for each call and restored after it. ``False``: PyNative, no compilation.
        use_past: see :func:`resolve_use_past` (``None``: the YAML's ``use_past`` on Ascend). With
            it the YAML's settings are kept as they are; without it :data:`CPU_OVERRIDES` apply.
        context: the YAML's ``context`` section. Its ``device_target`` and ``device_id`` are applied
            first, before the device decides ``use_past``; with ``use_past`` the rest is applied
            too (all keys but ``mode``), since the predict YAML's ``jit_config`` (``infer_boost``)
            and ``max_device_memory`` belong to its paged-attention setup.

    Raises:
        ValueError: parameters the checkpoints leave unset, checkpoint entries the model lacks,
            ``use_past=True`` off Ascend, or a ``context.device_target`` this MindSpore cannot run
            (e.g. an Ascend YAML on a CPU host: write its CPU dry run, ``research.llama3.train.dry_run``).
    """

    def __init__(self, model_config: dict, load_checkpoint: str, lora_checkpoint: str | None = None,
                 seq_length: int | None = None, graph_mode: bool = True, use_past: bool | None = None,
                 context: dict | None = None):
        import mindspore as ms

        from research.llama3.checkpoint.random_init import build_model

        self.graph_mode = graph_mode
        context = dict(context or {})
        device = {k: context.pop(k) for k in ("device_target", "device_id") if k in context}
        try:
            if device:
                ms.set_context(**device)
        except RuntimeError as exc:
            raise ValueError(f"context.device_target {device.get('device_target')!r} of the YAML cannot run "
                             f"here ({str(exc).splitlines()[0]}); on a host without it use the YAML's "
                             f"CPU dry run (python -m research.llama3.train.dry_run)") from None
        self.use_past = resolve_use_past(model_config, use_past, ms.get_context("device_target"))
        if self.use_past and context:
            ms.set_context(**{k: v for k, v in context.items() if k != "mode"})
        config = dict(model_config) if self.use_past else {**dict(model_config), **CPU_OVERRIDES}
        if seq_length:
            config["seq_length"] = int(seq_length)
        with_lora = lora_checkpoint is not None
        pet = config.get("pet_config") or {}
        if with_lora and not pet:
            raise ValueError("--lora_checkpoint given but the config has no model_config.pet_config")
        self.model = build_model(config, with_lora=False)
        if with_lora:
            from mindformers.pet import LoraConfig
            from mindformers.pet.pet_model import get_pet_model

            from research.llama3.checkpoint.merge_lora import lora_scaling

            # MindPet's LoRADense cells, as in training; dropout off for inference.
            alpha, rank = lora_scaling(pet, "model_config.pet_config")
            self.model = get_pet_model(self.model, LoraConfig(
                lora_rank=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=pet["target_modules"]))
        params = dict(ms.load_checkpoint(str(load_checkpoint)))
        if with_lora:
            params.update(ms.load_checkpoint(str(lora_checkpoint)))
        not_loaded, _ = ms.load_param_into_net(self.model, params)
        if not_loaded:
            raise ValueError(f"parameters not in {load_checkpoint}"
                             f"{' or ' + str(lora_checkpoint) if with_lora else ''}: {not_loaded[:8]}")
        self.model.set_train(False)
        self.seq_length = int(config["seq_length"])
        self.pad_id = int(config.get("pad_token_id") or 0)
        eos = config.get("eos_token_id")
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}

    @classmethod
    def from_yaml(cls, checked: ModelYaml, load_checkpoint: str, **kwargs) -> "MindFormersLM":
        """Build from a checked MindFormers YAML (its ``model.model_config`` and ``context``); ``kwargs``
        as for the constructor. Raises ``KeyError`` for a missing section."""
        return cls(checked.model_config, load_checkpoint, context=checked.config.get("context"), **kwargs)

    @contextmanager
    def _mode(self):
        """MindSpore's context mode of this model (graph or PyNative) for one call, restored after it."""
        import mindspore as ms

        previous = ms.get_context("mode")
        ms.set_context(mode=ms.GRAPH_MODE if self.graph_mode else ms.PYNATIVE_MODE)
        try:
            yield
        finally:
            ms.set_context(mode=previous)

    def next_logits(self, buffer: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Logits ``[B, V]`` (float32) of the token after position ``lengths[b] - 1`` of each row.

        Args:
            buffer: ``[B, seq_length]`` int token ids, right-padded with ``pad_id``.
            lengths: ``[B]`` int, filled length of each row (1 .. seq_length).
        """
        import mindspore as ms

        with self._mode():
            out = self.model(ms.Tensor(buffer.astype(np.int32)),
                             batch_valid_length=ms.Tensor(lengths.astype(np.int32)))
        return out[0].asnumpy().reshape(buffer.shape[0], -1)

    def generate_incremental(self, rows: list[list[int]], kwargs: dict, seed: int | None) -> list:
        """MindFormers' own ``generate`` (KV cache) on right-padded ``rows``; prompt + new ids per row."""
        with self._mode():
            return self.model.generate(right_pad(rows, self.pad_id).tolist(), seed=seed, **kwargs)


def mf_generate(lm: MindFormersLM, tokenizer, prompts: Sequence[str], max_new_tokens: int,
                batch_size: int = 8, sampling: Sampling | None = None,
                show_progress: bool = True, ignore_eos: bool = False) -> list[str]:
    """Continue each prompt with MindFormers; return only the new text.

    Same contract as :func:`eval.generate.generate` (prompts encoded with the tokenizer's special
    tokens, grouped by length, results in input order, decoded with ``skip_special_tokens``).
    A row stops at any of ``lm.eos_ids`` (the YAML's ``eos_token_id``, else the tokenizer's).
    ``lm.use_past`` picks MindFormers' incremental ``generate`` over recomputation (module doc).

    Args:
        sampling: ``None`` for greedy decoding, else temperature/top-p sampling. Recomputation
            draws from ``numpy.random.default_rng(sampling.seed)``, one generator per call, rows
            consumed in batch order; ``use_past`` seeds MindFormers' sampler with ``seed + batch
            number``. Either way a call is reproducible for the same prompts, batch size and seed.
        ignore_eos: generate exactly ``max_new_tokens`` per prompt (benchmarks).

    Raises:
        ValueError: non-positive ``max_new_tokens``/``batch_size``, or a prompt whose token count
            plus ``max_new_tokens`` exceeds ``lm.seq_length`` (the buffer length).
    """
    if max_new_tokens <= 0 or batch_size <= 0:
        raise ValueError(f"max_new_tokens and batch_size must be > 0, got {max_new_tokens}, {batch_size}")
    prompts = list(prompts)
    if not prompts:
        return []
    encoded = tokenizer(prompts)["input_ids"]
    too_long = [i for i, ids in enumerate(encoded) if len(ids) + max_new_tokens > lm.seq_length]
    if too_long:
        i = too_long[0]
        raise ValueError(f"{len(too_long)} prompt(s) do not fit seq_length {lm.seq_length} with "
                         f"max_new_tokens {max_new_tokens} (prompt {i}: {len(encoded[i])} tokens); "
                         f"raise --seq_length or lower --max_new_tokens")
    eos_ids = set() if ignore_eos else (lm.eos_ids or {tokenizer.eos_token_id})
    rng = np.random.default_rng(sampling.seed) if sampling else None
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    outputs: list[str | None] = [None] * len(prompts)
    with tqdm(total=len(prompts), unit="prompt", desc="generate (mindformers)",
              disable=not show_progress) as bar:
        for number, start in enumerate(range(0, len(order), batch_size)):
            index = order[start:start + batch_size]
            rows = [encoded[i] for i in index]
            if lm.use_past:
                # One seed per batch, so batches do not repeat each other's draws.
                seed = None if sampling is None else sampling.seed + number
                new = _incremental_batch(lm, rows, max_new_tokens, sampling, eos_ids, seed, ignore_eos)
            else:
                new = _recompute_batch(lm, rows, min(batch_size, len(prompts)), max_new_tokens, sampling, rng,
                                       eos_ids)
            for i, tokens in zip(index, new):
                outputs[i] = tokenizer.decode(tokens, skip_special_tokens=True)
            bar.update(len(index))
    return outputs  # type: ignore[return-value]


def _incremental_batch(lm: MindFormersLM, rows: list[list[int]], max_new_tokens: int,
                       sampling: Sampling | None, eos_ids: set[int], seed: int | None,
                       ignore_eos: bool) -> list[list[int]]:
    """New tokens of each row from MindFormers' ``generate`` with its KV cache (``use_past``)."""
    # generate() falls back to the config's eos id when given none; ignore_eos uses an id no token has.
    stop = eos_ids or ({-1} if ignore_eos else set())
    outputs = lm.generate_incremental(rows, generation_kwargs(max_new_tokens, sampling, stop, lm.pad_id), seed)
    return [new_tokens(out, len(row), stop) for out, row in zip(outputs, rows)]


def _recompute_batch(lm: MindFormersLM, rows: list[list[int]], width: int, max_new_tokens: int,
                     sampling: Sampling | None, rng, eos_ids: set[int]) -> list[list[int]]:
    """New tokens of each row, one full forward pass over a ``[width, seq_length]`` buffer per token."""
    filled = rows + [rows[0]] * (width - len(rows))  # constant shape: no recompilation
    buffer = np.full((width, lm.seq_length), lm.pad_id, dtype=np.int64)
    lengths = np.array([len(r) for r in filled])
    for b, r in enumerate(filled):
        buffer[b, :lengths[b]] = r
    new: list[list[int]] = [[] for _ in filled]
    done = np.arange(width) >= len(rows)
    for _ in range(max_new_tokens):
        logits = lm.next_logits(buffer, lengths)
        live = np.flatnonzero(~done)
        # Only live rows draw, so a seeded run does not depend on the filler rows.
        tokens = sample(logits[live], sampling, rng) if sampling else greedy(logits[live])
        for b, token in zip(live.tolist(), tokens.tolist()):
            if token in eos_ids:
                done[b] = True
                continue
            new[b].append(token)
            buffer[b, lengths[b]] = token
            lengths[b] += 1
        if done.all():
            break
    return new[:len(rows)]
