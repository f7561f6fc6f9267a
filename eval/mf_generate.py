"""Batched generation with MindFormers' own ``LlamaForCausalLM`` (MindSpore), without a KV cache.

On CPU MindFormers' incremental decoding (``use_past=True``) cannot run: ``ApplyRotaryPosEmb``,
``ReshapeAndCache`` and ``PagedAttention`` have no CPU kernels, and its sampler needs ``ArgMaxExt``
/ ``TopkExt``. So each new token is predicted by a full forward pass over a fixed
``[batch, seq_length]`` buffer, and the next token is chosen in numpy (:mod:`eval.sampling`).

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

import numpy as np
from tqdm.auto import tqdm

from eval.sampling import Sampling, greedy, sample

# Settings without which LlamaForCausalLM cannot run forward on CPU (see tests/test_convert_smollm2.py).
CPU_OVERRIDES = {
    "compute_dtype": "float32", "layernorm_compute_type": "float32", "softmax_compute_type": "float32",
    "rotary_dtype": "float32", "param_init_type": "float32",
    "use_flash_attention": False, "fused_rms_norm": False, "use_rope_slice": True, "use_past": False,
}


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

    Raises:
        ValueError: parameters the checkpoints leave unset, or checkpoint entries the model lacks.
    """

    def __init__(self, model_config: dict, load_checkpoint: str, lora_checkpoint: str | None = None,
                 seq_length: int | None = None, graph_mode: bool = True):
        import mindspore as ms

        from research.llama3.random_init import build_model

        self.graph_mode = graph_mode
        config = {**dict(model_config), **CPU_OVERRIDES}
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

            from research.llama3.merge_lora import lora_scaling

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

    def next_logits(self, buffer: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Logits ``[B, V]`` (float32) of the token after position ``lengths[b] - 1`` of each row.

        Args:
            buffer: ``[B, seq_length]`` int token ids, right-padded with ``pad_id``.
            lengths: ``[B]`` int, filled length of each row (1 .. seq_length).
        """
        import mindspore as ms

        previous = ms.get_context("mode")
        ms.set_context(mode=ms.GRAPH_MODE if self.graph_mode else ms.PYNATIVE_MODE)
        try:
            out = self.model(ms.Tensor(buffer.astype(np.int32)),
                             batch_valid_length=ms.Tensor(lengths.astype(np.int32)))
            return out[0].asnumpy().reshape(buffer.shape[0], -1)
        finally:
            ms.set_context(mode=previous)


def mf_generate(lm: MindFormersLM, tokenizer, prompts: Sequence[str], max_new_tokens: int,
                batch_size: int = 8, sampling: Sampling | None = None,
                show_progress: bool = True, ignore_eos: bool = False) -> list[str]:
    """Continue each prompt with MindFormers' forward pass; return only the new text.

    Same contract as :func:`eval.generate.generate` (prompts encoded with the tokenizer's special
    tokens, grouped by length, results in input order, decoded with ``skip_special_tokens``).
    A row stops at any of ``lm.eos_ids`` (the YAML's ``eos_token_id``, else the tokenizer's).

    Args:
        sampling: ``None`` for greedy decoding, else temperature/top-p sampling drawn from
            ``numpy.random.default_rng(sampling.seed)``, one generator per call, rows consumed in
            batch order, so a call is reproducible for the same prompts, batch size and seed.
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
    rows = min(batch_size, len(prompts))
    with tqdm(total=len(prompts), unit="prompt", desc="generate (mindformers)",
              disable=not show_progress) as bar:
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            filled = index + [index[0]] * (rows - len(index))  # constant shape: no recompilation
            buffer = np.full((rows, lm.seq_length), lm.pad_id, dtype=np.int64)
            lengths = np.array([len(encoded[i]) for i in filled])
            for row, i in enumerate(filled):
                buffer[row, :lengths[row]] = encoded[i]
            new: list[list[int]] = [[] for _ in filled]
            done = np.arange(rows) >= len(index)
            for _ in range(max_new_tokens):
                logits = lm.next_logits(buffer, lengths)
                live = np.flatnonzero(~done)
                # Only live rows draw, so a seeded run does not depend on the filler rows.
                tokens = sample(logits[live], sampling, rng) if sampling else greedy(logits[live])
                for row, token in zip(live.tolist(), tokens.tolist()):
                    if token in eos_ids:
                        done[row] = True
                        continue
                    new[row].append(token)
                    buffer[row, lengths[row]] = token
                    lengths[row] += 1
                if done.all():
                    break
            for row, i in enumerate(index):
                outputs[i] = tokenizer.decode(new[row], skip_special_tokens=True)
            bar.update(len(index))
    return outputs  # type: ignore[return-value]
