"""The PyTorch + PEFT training loop of ``research.llama3.train.torch_finetune``: the LoRA model, MindFormers'
loss, the AdamW loop with MindFormers' lr schedule and clipping, and the run-directory outputs. Imports
torch at module level; the CLI imports this module only after parsing its arguments."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from research.llama3.train.param_count import count_parameters
from research.llama3.train.quantization import quantized_numel
from research.llama3.train.torch_data import TrainingConfig
from research.rundir.layout import RunLayout


def _check_hf_dims(base_dir: str, dims) -> None:
    """Refuse an HF directory whose ``config.json`` dims differ from the YAML's (names the differences)."""
    from transformers import AutoConfig

    from research.llama3.config.model_config import LlamaDims

    found = LlamaDims.from_hf_config(AutoConfig.from_pretrained(base_dir)).to_dict()
    # Token ids and the position limit are run-time settings; the YAML's apply.
    differ = {k: (v, found[k]) for k, v in dims.to_dict().items()
              if v != found[k] and k not in ("bos_token_id", "eos_token_id", "pad_token_id", "max_position")}
    if differ:
        raise ValueError(f"{base_dir}: config.json dims differ from the YAML's model_config (yaml, hf): {differ}")


def build_lora_model(base_ckpt: str | None, dims, pet_config: dict, dtype, attn_implementation: str = "sdpa",
                     quantization: str = "none", device: str = "cpu", gradient_checkpointing: bool = False):
    """A ``peft.PeftModel`` (train mode) around a transformers Llama or Qwen2 with the base weights.

    Args:
        base_ckpt: MindFormers base checkpoint; or a HF directory (``convert_hf to_hf``), loaded straight
            in ``dtype`` (or quantized while loading), which spares each torchrun process a float32 copy
            of the model in host memory; or None for random weights (smoke runs).
        dims: ``LlamaDims``.
        pet_config: MindFormers ``pet_config`` (see ``peft_adapter.peft_lora_config``).
        dtype: torch dtype of the base weights (the compute dtype of quantized ones); LoRA weights stay
            float32 (PEFT's adapter autocast).
        attn_implementation: transformers attention backend (``sdpa``, ``eager``, ``flex_attention``...).
        quantization: ``none``, ``nf4`` or ``int8`` (``research.llama3.train.quantization``); a quantized
            model is placed on ``device`` here and must not be moved or cast afterwards.
        device: where a quantized base is built (``cpu``, ``cuda:N``).
        gradient_checkpointing: recompute decoder activations in the backward pass (less memory, slower).

    Raises:
        ValueError: an HF directory whose dims differ from ``dims``; an unknown ``quantization``.
    """
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from research.llama3.checkpoint.peft_adapter import peft_lora_config
    from research.llama3.checkpoint.to_hf import build_hf_model
    from research.llama3.train.quantization import QUANTIZATIONS, load_quantized, prepare_for_lora

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    is_dir = bool(base_ckpt) and os.path.isdir(base_ckpt)
    if is_dir:
        _check_hf_dims(base_ckpt, dims)
    if quantization != "none" and is_dir:
        model = load_quantized(base_ckpt, quantization, dtype, device, attn_implementation)
    else:
        if is_dir:
            model = AutoModelForCausalLM.from_pretrained(base_ckpt, dtype=dtype)
        elif base_ckpt:
            model = build_hf_model(base_ckpt, dims)
        else:
            model = AutoModelForCausalLM.from_config(dims.to_hf_config())
        model.config._attn_implementation = attn_implementation
        model = model.to(dtype)
        if quantization != "none":
            model = load_quantized(model, quantization, dtype, device, attn_implementation)
    if quantization != "none":
        model = prepare_for_lora(model, gradient_checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return get_peft_model(model, peft_lora_config(pet_config, dims.num_layers), autocast_adapter_dtype=True).train()


class CausalLMLoss(torch.nn.Module):
    """Summed token cross entropy of a PEFT causal LM, computing logits only where a target exists.

    ``forward(tokens, targets, position_ids, attention_mask=None)`` -> (loss_sum float32 scalar,
    supervised token count int64 scalar); inputs int64 [batch, seq]. Projecting only the supervised
    positions through ``lm_head`` skips the prompt's and padding's share of the largest matmul and of
    the float32 logits.
    """

    def __init__(self, peft_model):
        super().__init__()
        self.peft_model = peft_model

    def forward(self, tokens, targets, position_ids, attention_mask=None):
        causal_lm = self.peft_model.base_model.model
        hidden = causal_lm.model(input_ids=tokens, position_ids=position_ids, attention_mask=attention_mask,
                                 use_cache=False).last_hidden_state
        keep = targets != -100
        logits = causal_lm.lm_head(hidden[keep]).float()
        loss = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
        return loss, keep.sum()


def dist_info():
    """(rank, world, local_rank) from torchrun's environment; (0, 1, 0) when not launched by it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def train(settings: TrainingConfig, rows: dict[str, np.ndarray], base_ckpt: str | None, run_dir: str,
          stop_step: int = 0, device: str = "cpu", compile_model: bool = False,
          attn_implementation: str = "sdpa", log=print, quantization: str = "none",
          gradient_checkpointing: bool = False) -> dict:
    """Train LoRA on ``rows`` (from ``unpacked_rows``/``packed_rows``) and write the run-dir outputs.

    ``quantization`` (``none``, ``nf4``, ``int8``) quantizes the frozen base (QLoRA; see
    ``research.llama3.train.quantization``); ``gradient_checkpointing`` recomputes activations in the backward.

    Returns:
        ``{"steps", "final_loss", "adapter_dir", "lora_ckpt"}`` (``lora_ckpt`` None when MindSpore is absent).

    Raises:
        ValueError: fewer rows than one global batch.
        RuntimeError: the loss stops being finite (the step is named).
    """
    import torch.distributed as dist

    from research.llama3.train.lr_schedule import mindformers_lr
    from research.llama3.config.model_config import LlamaDims

    rank, world, local_rank = dist_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    dev = torch.device(f"cuda:{local_rank}" if device == "cuda" else "cpu")
    if device == "cuda":
        torch.cuda.set_device(dev)
    torch.manual_seed(settings.seed)
    global_batch = settings.batch_size * world
    n_rows = rows["tokens"].shape[0]
    steps_per_epoch = n_rows // global_batch
    if steps_per_epoch == 0:
        raise ValueError(f"{n_rows} training rows but a global batch needs {global_batch}")
    total = steps_per_epoch * settings.epochs
    total = min(total, stop_step) if stop_step else total
    lr_at = mindformers_lr(settings.lr_schedule, stop_step or total)

    dtype = torch.float32 if device == "cpu" else getattr(torch, settings.compute_dtype)
    dims = LlamaDims.from_mindformers(settings.model_config)
    peft_model = build_lora_model(base_ckpt, dims, settings.pet_config, dtype, attn_implementation,
                                  quantization, str(dev), gradient_checkpointing)
    if quantization == "none":
        peft_model = peft_model.to(dev)  # a quantized base is built on its device
    # A 4-bit weight counts its original elements, so the figures do not depend on --quantization.
    counts = count_parameters((quantized_numel(p), p.requires_grad) for p in peft_model.parameters())
    if compile_model:
        # The decoder only: the loss's boolean indexing has data-dependent shapes.
        peft_model.base_model.model.model.compile()
    step_fn = CausalLMLoss(peft_model)
    if world > 1:
        step_fn = torch.nn.parallel.DistributedDataParallel(step_fn, device_ids=[local_rank] if device == "cuda" else None)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr_at(0), betas=settings.betas, eps=settings.eps,
                                  weight_decay=settings.weight_decay, fused=device == "cuda")

    os.makedirs(run_dir, exist_ok=True)
    if rank == 0:
        from preprocess.atomic import write_json_atomic

        write_json_atomic(RunLayout(Path(run_dir)).params, counts)
        log(f"trainable params: {counts['trainable']:,} of {counts['total']:,} (ratio {counts['ratio']:.6f})")
    loss_log = str(RunLayout(Path(run_dir)).loss_log)
    tokens_per_step = global_batch * settings.seq_length
    t0 = t_last = time.time()
    step, loss_value = 0, float("nan")
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in rows.items()}
    for epoch in range(settings.epochs):
        order = (np.random.default_rng(settings.seed + epoch).permutation(n_rows) if settings.shuffle
                 else np.arange(n_rows))
        for s in range(steps_per_epoch):
            if step >= total:
                break
            chosen = order[s * global_batch: (s + 1) * global_batch][rank * settings.batch_size:
                                                                     (rank + 1) * settings.batch_size]
            batch = {k: v[torch.from_numpy(chosen)].to(dev, non_blocking=True) for k, v in tensors.items()}
            lr = lr_at(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum, count = step_fn(**batch)
            stats = torch.stack([loss_sum.detach().float(), count.float()])
            if world > 1:
                dist.all_reduce(stats)
            # Mean over the global batch's tokens; DDP averages gradients over ranks, hence x world.
            (loss_sum * world / stats[1].clamp(min=1)).backward()
            norm = torch.nn.utils.clip_grad_norm_(params, settings.clip_norm if settings.clip_norm else float("inf"))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            loss_value = float(stats[0] / stats[1].clamp(min=1))
            now = time.time()
            if rank == 0:
                record = {"step": step, "loss": loss_value, "lr": lr, "global_norm": float(norm),
                          "elapsed_s": round(now - t0, 3), "step_s": round(now - t_last, 3),
                          "tokens_per_s": round(tokens_per_step / max(now - t_last, 1e-9), 1)}
                with open(loss_log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            t_last = now
            if not math.isfinite(loss_value):
                raise RuntimeError(f"loss became {loss_value} at step {step}; stopping")
    result = {"steps": step, "final_loss": loss_value, "adapter_dir": None, "lora_ckpt": None}
    if rank == 0:
        result.update(_save_adapters(peft_model, run_dir, log))
    if world > 1:
        dist.barrier()
    return result


def _save_adapters(peft_model, run_dir: str, log) -> dict:
    """Write ``adapter/`` (PEFT) and ``lora.ckpt`` (MindFormers names) from the trained model."""
    from peft import get_peft_model_state_dict

    from research.llama3.checkpoint.peft_adapter import peft_to_ms_lora

    adapter_dir = os.path.join(run_dir, "adapter")
    peft_model.save_pretrained(adapter_dir)
    lora = peft_to_ms_lora(get_peft_model_state_dict(peft_model))
    try:
        from research.llama3.checkpoint.ms_checkpoint import save_ms_checkpoint
    except ImportError:  # pragma: no cover - MindSpore-less GPU hosts
        log("MindSpore is not installed: lora.ckpt not written; convert later with "
            f"python -m research.llama3.checkpoint.peft_adapter from_peft --adapter_dir {adapter_dir} --output lora.ckpt")
        return {"adapter_dir": adapter_dir, "lora_ckpt": None}
    lora_ckpt = str(save_ms_checkpoint(lora, RunLayout(Path(run_dir)).lora))
    return {"adapter_dir": adapter_dir, "lora_ckpt": lora_ckpt}
