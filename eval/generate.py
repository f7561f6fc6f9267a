"""Batched generation (greedy, or temperature/top-p sampling) with a transformers causal LM (PyTorch).

Left padding is what makes batching safe for decoder-only models: every prompt then ends at the
same position, so the first new token of every row is predicted from that row's own last prompt
token (transformers' generation docs, "Wrong padding side"). Position ids are derived from the
attention mask by ``generate``, so a padded prompt decodes exactly as it would alone.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from eval.sampling import Sampling


def _eos_ids(model, tokenizer) -> int | list[int] | None:
    # Llama-3 checkpoints list several stop ids (<|end_of_text|>, <|eot_id|>) in their generation
    # config; the tokenizer knows only one.
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    return eos if eos is not None else tokenizer.eos_token_id


def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int,
             batch_size: int = 8, show_progress: bool = True,
             sampling: Sampling | None = None, use_cache: bool = True,
             ignore_eos: bool = False) -> list[str]:
    """Continue each prompt (greedy by default) and return only the new text.

    Args:
        model: a transformers causal LM (e.g. ``LlamaForCausalLM``); inputs go to ``model.device``.
        tokenizer: its tokenizer; prompts are encoded with the tokenizer's special tokens (BOS).
            Its ``padding_side`` and ``pad_token`` are set for the call (left; EOS when there is no
            pad token) and restored afterwards.
        prompts: full prompt strings (already rendered with the chat template).
        max_new_tokens: upper bound on generated tokens per prompt (> 0).
        batch_size: prompts per forward batch (> 0). Prompts are grouped by token length to
            waste little compute on padding; results come back in input order.
        show_progress: draw a tqdm bar (prompts done / total) on stderr.
        sampling: ``None`` for greedy decoding; else transformers' multinomial sampling with
            ``sampling.temperature`` and ``sampling.top_p`` (``top_k`` off), after
            ``torch.manual_seed(sampling.seed)`` so a call is reproducible on the same device.
        use_cache: keep the KV cache (False: every step recomputes the whole sequence; for
            benchmarks).
        ignore_eos: generate exactly ``max_new_tokens`` per prompt (benchmarks).

    Returns:
        One string per prompt, decoded with ``skip_special_tokens=True``: the continuation up to
        and excluding EOS, or ``max_new_tokens`` tokens.

    Raises:
        ValueError: non-positive ``max_new_tokens``/``batch_size``, or a tokenizer with neither a
            pad nor an EOS token.
    """
    if max_new_tokens <= 0 or batch_size <= 0:
        raise ValueError(f"max_new_tokens and batch_size must be > 0, got {max_new_tokens}, {batch_size}")
    prompts = list(prompts)
    if not prompts:
        return []
    saved_side, saved_pad = tokenizer.padding_side, tokenizer.pad_token
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("tokenizer has neither a pad token nor an EOS token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    was_training = model.training
    # A fresh config rather than model.generation_config: instruct checkpoints ship sampling
    # defaults (temperature, top_p) that would otherwise be merged in or warned about.
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sampling is not None,
        temperature=sampling.temperature if sampling else None,
        top_p=sampling.top_p if sampling else None,
        top_k=0 if sampling else None,
        num_beams=1,
        use_cache=use_cache,
        min_new_tokens=max_new_tokens if ignore_eos else None,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=_eos_ids(model, tokenizer),
        bos_token_id=getattr(getattr(model, "generation_config", None), "bos_token_id", None),
    )
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    outputs: list[str | None] = [None] * len(prompts)
    try:
        model.eval()
        if sampling is not None:
            torch.manual_seed(sampling.seed)
        with torch.inference_mode(), tqdm(total=len(prompts), unit="prompt", desc="generate",
                                          disable=not show_progress) as bar:
            for start in range(0, len(order), batch_size):
                index = order[start:start + batch_size]
                enc = tokenizer([prompts[i] for i in index], return_tensors="pt", padding=True)
                # Only these two: fast tokenizers may add token_type_ids, which Llama rejects.
                enc = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask")}
                out = model.generate(**enc, generation_config=config)
                new_tokens = out[:, enc["input_ids"].shape[1]:]
                texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
                for i, text in zip(index, texts):
                    outputs[i] = text
                bar.update(len(index))
    finally:
        tokenizer.padding_side = saved_side
        tokenizer.pad_token = saved_pad
        model.train(was_training)
    return outputs  # type: ignore[return-value]
