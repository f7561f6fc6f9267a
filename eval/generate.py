"""Batched generation (greedy, or temperature/top-p sampling) with a transformers causal LM (PyTorch).

Left padding is what makes batching safe for decoder-only models: every prompt then ends at the
same position, so the first new token of every row is predicted from that row's own last prompt
token (transformers' generation docs, "Wrong padding side"). Position ids are derived from the
attention mask by ``generate``, so a padded prompt decodes exactly as it would alone.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, GenerationConfig

from eval.sampling import Sampling


def _eos_ids(model, tokenizer) -> int | list[int] | None:
    # Llama-3 checkpoints list several stop ids (<|end_of_text|>, <|eot_id|>) in their generation
    # config; the tokenizer knows only one.
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    return eos if eos is not None else tokenizer.eos_token_id


def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int,
             batch_size: int = 8, show_progress: bool = True,
             sampling: Sampling | None = None, use_cache: bool = True,
             ignore_eos: bool = False, prefix: str = "", stop: Sequence[str] = ()) -> list[str]:
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
        prefix: text every prompt starts with (few-shot worked examples). Its KV cache is computed
            once and copies of it continue each batch (transformers' "re-use a prompt cache" pattern,
            docs: KV cache strategies): a 13-example PoT prompt is ~1,000 SmolLM2 tokens, and
            recomputing it for every item took most of the 5.4 s an item cost on 2 CPU cores. The
            cached tokens are the prompts' common *token* prefix (at most the prefix's own tokens):
            BPE may merge across the text boundary (SmolLM2 encodes a final ``"\n\n"`` alone as one
            token, and as two before ``问题``), so the cache always holds tokens every prompt has.
        stop: strings that end a generation (``GenerationConfig.stop_strings``); the text is
            returned up to and including the stop string, as transformers leaves it.

    Returns:
        One string per prompt, decoded with ``skip_special_tokens=True``: the continuation up to
        and excluding EOS, or ``max_new_tokens`` tokens.

    Raises:
        ValueError: non-positive ``max_new_tokens``/``batch_size``, a tokenizer with neither a
            pad nor an EOS token, or a prompt that does not start with ``prefix``.
    """
    if max_new_tokens <= 0 or batch_size <= 0:
        raise ValueError(f"max_new_tokens and batch_size must be > 0, got {max_new_tokens}, {batch_size}")
    prompts = list(prompts)
    if not prompts:
        return []
    if prefix and not all(p.startswith(prefix) for p in prompts):
        raise ValueError("every prompt must start with the shared prefix")
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
        stop_strings=list(stop) or None,
    )
    stop_kwargs = {"tokenizer": tokenizer} if stop else {}
    outputs: list[str | None] = [None] * len(prompts)
    try:
        model.eval()
        if sampling is not None:
            torch.manual_seed(sampling.seed)
        with torch.inference_mode(), tqdm(total=len(prompts), unit="prompt", desc="generate",
                                          disable=not show_progress) as bar:
            if prefix and use_cache:
                _generate_after_prefix(model, tokenizer, prompts, prefix, batch_size, config, stop_kwargs, outputs, bar)
            else:
                _generate_batches(model, tokenizer, prompts, batch_size, config, stop_kwargs, outputs, bar)
    finally:
        tokenizer.padding_side = saved_side
        tokenizer.pad_token = saved_pad
        model.train(was_training)
    return outputs  # type: ignore[return-value]


def _generate_batches(model, tokenizer, prompts, batch_size, config, stop_kwargs, outputs, bar) -> None:
    """Fill ``outputs`` in left-padded batches of ``batch_size`` prompts of similar token length."""
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        enc = tokenizer([prompts[i] for i in index], return_tensors="pt", padding=True)
        # Only these two: fast tokenizers may add token_type_ids, which Llama rejects.
        enc = {k: enc[k].to(model.device) for k in ("input_ids", "attention_mask")}
        out = model.generate(**enc, generation_config=config, **stop_kwargs)
        texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for i, text in zip(index, texts):
            outputs[i] = text
        bar.update(len(index))


def _generate_after_prefix(model, tokenizer, prompts, prefix, batch_size, config, stop_kwargs, outputs, bar) -> None:
    """Fill ``outputs`` in batches that continue copies of the shared tokens' KV cache.

    The cache holds the longest token prefix that all prompts share, cut at the text prefix's own
    token count and before each prompt's last token. Matching tokens rather than text matters: a
    text-level prefix whose tokens differ from the prompts' (a BPE merge across the boundary) once
    sent every prompt down the cache-free path, and the base model's 100-item eval took 770 s
    instead of the intended saving (2026-12-08, docs/recipe_runs.md).

    A batch holds prompts whose own tokens (after the cached ones) are equally long, so no row is
    padded: padding between the cached prefix and a prompt's tokens made every row cost as much as
    a batch of one (measured: 75 against 44 ms a row and token at batch 4 after a 2,100-token
    prefix on 2 CPU cores).
    """
    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    limit = min(len(tokenizer(prefix)["input_ids"]), *(len(ids) - 1 for ids in encoded))
    shared = 0
    while shared < limit and all(ids[shared] == encoded[0][shared] for ids in encoded):
        shared += 1
    if shared == 0:
        _generate_batches(model, tokenizer, prompts, batch_size, config, stop_kwargs, outputs, bar)
        return
    cache = DynamicCache()
    model(input_ids=torch.tensor([encoded[0][:shared]], device=model.device), past_key_values=cache, use_cache=True)
    by_length: dict[int, list[int]] = {}
    for i in range(len(prompts)):
        by_length.setdefault(len(encoded[i]), []).append(i)
    for group in by_length.values():
        for start in range(0, len(group), batch_size):
            index = group[start:start + batch_size]
            ids = torch.tensor([encoded[i] for i in index], device=model.device)
            rows = copy.deepcopy(cache)
            rows.batch_repeat_interleave(len(index))
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config,
                                 past_key_values=rows, **stop_kwargs)
            for i, text in zip(index, tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)):
                outputs[i] = text
            bar.update(len(index))
