"""LoRA fine-tuning with PyTorch + PEFT (CUDA fallback) from the same YAML and data as ``research.llama3.train.finetune``.

Usage (one GPU or CPU; several GPUs with ``torchrun --nproc_per_node N -m research.llama3.train.torch_finetune ...``)::

    python -m research.llama3.train.torch_finetune --config configs/smollm2_135m/finetune_lora_cpu.yaml \\
        --train_dataset data/train.mindrecord --load_checkpoint base.ckpt \\
        --output_dir work/output --run_dir logs/RUN [--stop_step N] [--seed S] [--device cpu|cuda] [--packing]

What is read from the YAML, as MindFormers reads it:
  model.model_config     dims (``LlamaDims.from_mindformers``), ``seq_length``, ``pad_token_id``,
                         ``ignore_token_id``, ``compute_dtype`` (the base weights' dtype on CUDA;
                         CPU always computes in float32), ``pet_config`` (-> ``peft.LoraConfig``:
                         ``wq``/``wv`` -> ``q_proj``/``v_proj``, rank, alpha, dropout)
  lr_schedule            ``research.llama3.train.lr_schedule`` (MindFormers' formulas; total_steps -1 =
                         the run's steps)
  optimizer              AdamW betas (``betas`` or ``beta1``/``beta2``), ``eps``, ``weight_decay``
  runner_config          ``batch_size`` per device, ``epochs``; a step = batch_size x world size rows
  runner_wrapper         ``use_clip_grad`` / ``max_grad_norm`` (MindFormers' default 1.0)
  train_dataset          ``data_loader.shuffle``; ``drop_remainder`` as MindFormers (always)
  processor.tokenizer    only for conversation JSON input (``research.llama3.tokenizers.tokenizer``)

The loss is MindFormers': cross entropy over positions whose input token is not the pad id and
whose label is not ``ignore_token_id``, averaged over those tokens of the whole global batch.

``--train_dataset`` is a MindRecord file from ``research.llama3.records.mindrecord`` or a conversation JSON file,
which is first converted by ``research.llama3.records.mindrecord`` (``--template``, default ``preprocess.templates.DEFAULT_TEMPLATE``) into
``<output_dir>/train.mindrecord`` so both inputs train on identical records.

``--packing`` concatenates records (their real tokens) into rows of ``seq_length``; attention stays
within each record (transformers derives a block-causal mask from restarting ``position_ids``), so
the loss of a batch is unchanged while padding is no longer computed. A step then holds more records.

Outputs (rank 0): ``<run_dir>/loss.jsonl`` (step, loss, lr, global_norm, elapsed_s, step_s,
tokens_per_s = global batch x seq_length / step_s, as the MindFormers entry), ``<run_dir>/params.json``
({trainable, base, total, ratio}), ``<run_dir>/config.yaml`` (the YAML and the run's arguments),
``<run_dir>/adapter/`` (PEFT: ``adapter_model.safetensors``, ``adapter_config.json``) and
``<run_dir>/lora.ckpt`` (the same tensors in MindFormers names, for ``eval.math --lora_checkpoint``).
Needs ``peft``; MindSpore is used to read MindRecord and write ``lora.ckpt``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from preprocess.templates import DEFAULT_TEMPLATE
from research.llama3.config.model_config import read_config
from research.llama3.train.param_count import count_parameters
from research.rundir.layout import RunLayout
from preprocess.cli import Parser

__all__ = ["TrainingConfig", "load_settings", "read_mindrecord", "unpacked_rows", "packed_rows", "build_lora_model",
           "CausalLMLoss", "train", "prepare_records", "main"]


@dataclass
class TrainingConfig:
    """The parts of a MindFormers YAML the torch path uses (see the module docstring); not the runner's
    ``research.run.settings.RunSettings``, which holds a whole job's options."""

    model_config: dict
    pet_config: dict
    lr_schedule: dict
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    batch_size: int
    epochs: int
    seq_length: int
    pad_id: int
    ignore_id: int
    shuffle: bool
    clip_norm: float | None
    seed: int
    compute_dtype: str


def load_settings(config_path: str, seed: int | None = None) -> TrainingConfig:
    """Read a MindFormers YAML into ``TrainingConfig``.

    Raises:
        FileNotFoundError: no such YAML.
        KeyError: a required section/key (model.model_config, its pet_config, lr_schedule,
            runner_config.batch_size) is missing; the message names it and the file.
    """
    cfg = read_config(config_path)
    try:
        mc = cfg["model"]["model_config"]
        pet = mc["pet_config"]
        lr = cfg["lr_schedule"]
        batch = int(cfg["runner_config"]["batch_size"])
    except (KeyError, TypeError) as exc:
        raise KeyError(f"{config_path}: missing {exc} (needs model.model_config.pet_config, lr_schedule, "
                       f"runner_config.batch_size)") from None
    opt = cfg.get("optimizer") or {}
    betas = opt.get("betas") or [opt.get("beta1", 0.9), opt.get("beta2", 0.999)]
    wrapper = cfg.get("runner_wrapper") or {}
    loader = ((cfg.get("train_dataset") or {}).get("data_loader") or {})
    return TrainingConfig(
        model_config=mc, pet_config=pet, lr_schedule=lr,
        betas=(float(betas[0]), float(betas[1])), eps=float(opt.get("eps", 1e-8)),
        weight_decay=float(opt.get("weight_decay", 0.0)),
        batch_size=batch, epochs=int(cfg["runner_config"].get("epochs", 1)),
        seq_length=int(mc["seq_length"]), pad_id=int(mc.get("pad_token_id", 0)),
        ignore_id=int(mc.get("ignore_token_id", -100)), shuffle=bool(loader.get("shuffle", True)),
        clip_norm=float(wrapper.get("max_grad_norm", 1.0)) if wrapper.get("use_clip_grad", False) else None,
        seed=int(cfg.get("seed", 0) if seed is None else seed),
        compute_dtype=str(mc.get("compute_dtype", "float32")),
    )


def read_mindrecord(path: str, seq_length: int) -> tuple[np.ndarray, np.ndarray]:
    """``input_ids`` and ``labels`` of a ``research.llama3.records.mindrecord`` file, int64 ``[N, seq_length + 1]``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a record without those columns or of another length (naming file and record).
    """
    from mindspore.mindrecord import FileReader

    if not os.path.isfile(path):
        raise FileNotFoundError(f"MindRecord file not found: {path}")
    reader = FileReader(path, num_consumer=1)
    ids, labels = [], []
    try:
        for index, row in enumerate(reader.get_next()):
            if "input_ids" not in row or "labels" not in row:
                raise ValueError(f"{path}: record {index} lacks input_ids/labels (has {sorted(row)})")
            for field in ("input_ids", "labels"):
                if row[field].shape != (seq_length + 1,):
                    raise ValueError(f"{path}: record {index} field {field} has shape {row[field].shape}, expected "
                                     f"({seq_length + 1},) for the YAML's seq_length {seq_length}")
            ids.append(row["input_ids"])
            labels.append(row["labels"])
    finally:
        reader.close()
    if not ids:
        raise ValueError(f"{path}: no records")
    return np.stack(ids).astype(np.int64), np.stack(labels).astype(np.int64)


def unpacked_rows(input_ids: np.ndarray, labels: np.ndarray, pad_id: int, ignore_id: int) -> dict[str, np.ndarray]:
    """One row per record, shifted as MindFormers' ``LlamaForCausalLM`` does.

    Returns:
        ``tokens`` = ids[:, :-1]; ``targets`` = labels[:, 1:], set to -100 where the input token is the
        pad id or the label is ``ignore_id`` (MindFormers' ``input_mask``); ``attention_mask`` = tokens
        != pad id (MindFormers hides pad tokens as keys); ``position_ids`` 0..seq-1. All int64 [N, seq].
    """
    tokens = input_ids[:, :-1]
    targets = labels[:, 1:].copy()
    targets[(tokens == pad_id) | (targets == ignore_id)] = -100
    positions = np.broadcast_to(np.arange(tokens.shape[1]), tokens.shape)
    return {"tokens": tokens, "targets": targets, "position_ids": np.ascontiguousarray(positions),
            "attention_mask": (tokens != pad_id).astype(np.int64)}


def packed_rows(input_ids: np.ndarray, labels: np.ndarray, pad_id: int, ignore_id: int) -> dict[str, np.ndarray]:
    """Records packed first-fit into rows of ``seq_length`` positions, each record keeping its own positions.

    A record's real length is one past its last label that is not ``ignore_id`` (its EOS): the pad id
    may equal a real token (SmolLM2), so padding cannot be recognised by id. Each record contributes
    its shifted (tokens, targets) pair; leftover positions are padding with targets -100 and their own
    position run, so they form a separate block. Records keep their order of first appearance.

    Returns:
        ``tokens``, ``targets``, ``position_ids`` int64 [M, seq_length], M <= N; no ``attention_mask``
        (transformers then builds the block-causal mask from ``position_ids``).
    """
    seq = input_ids.shape[1] - 1
    rows: list[list[tuple[np.ndarray, np.ndarray]]] = []
    room: list[int] = []
    for ids, lab in zip(input_ids, labels):
        labelled = np.nonzero(lab != ignore_id)[0]
        length = int(labelled[-1]) + 1 if labelled.size else 0
        if length < 2:
            continue  # nothing to learn from
        tokens = ids[: length - 1]
        targets = lab[1:length].copy()
        targets[(tokens == pad_id) | (targets == ignore_id)] = -100
        for index, free in enumerate(room):
            if free >= tokens.size:
                rows[index].append((tokens, targets))
                room[index] -= tokens.size
                break
        else:
            rows.append([(tokens, targets)])
            room.append(seq - tokens.size)
    out = {key: np.full((len(rows), seq), fill, dtype=np.int64)
           for key, fill in (("tokens", pad_id), ("targets", -100), ("position_ids", 0))}
    for r, parts in enumerate(rows):
        start = 0
        for tokens, targets in parts:
            end = start + tokens.size
            out["tokens"][r, start:end] = tokens
            out["targets"][r, start:end] = targets
            out["position_ids"][r, start:end] = np.arange(tokens.size)
            start = end
        out["position_ids"][r, start:] = np.arange(seq - start)
    return out


def build_lora_model(base_ckpt: str | None, dims, pet_config: dict, dtype, attn_implementation: str = "sdpa"):
    """A ``peft.PeftModel`` (train mode) around a transformers Llama with the base weights.

    Args:
        base_ckpt: MindFormers base checkpoint; or a HF directory (``convert_hf to_hf``), loaded straight
            in ``dtype``, which spares each torchrun process a float32 copy of the model in host
            memory; or None for random weights (smoke runs).
        dims: ``LlamaDims``.
        pet_config: MindFormers ``pet_config`` (see ``peft_adapter.peft_lora_config``).
        dtype: torch dtype of the base weights; LoRA weights stay float32 (PEFT's adapter autocast).
        attn_implementation: transformers attention backend (``sdpa``, ``eager``, ``flex_attention``...).
    """
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from research.llama3.config.model_config import LlamaDims
    from research.llama3.checkpoint.peft_adapter import peft_lora_config
    from research.llama3.checkpoint.to_hf import build_hf_model

    if base_ckpt and os.path.isdir(base_ckpt):
        model = AutoModelForCausalLM.from_pretrained(base_ckpt, dtype=dtype)
        found = LlamaDims.from_hf_config(model.config).to_dict()
        # Token ids and the position limit are run-time settings; the YAML's apply.
        differ = {k: (v, found[k]) for k, v in dims.to_dict().items()
                  if v != found[k] and k not in ("bos_token_id", "eos_token_id", "pad_token_id", "max_position")}
        if differ:
            raise ValueError(f"{base_ckpt}: config.json dims differ from the YAML's model_config (yaml, hf): {differ}")
    elif base_ckpt:
        model = build_hf_model(base_ckpt, dims)
    else:
        model = AutoModelForCausalLM.from_config(dims.to_hf_config())
    model.config._attn_implementation = attn_implementation
    model = model.to(dtype)
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


def _dist():
    """(rank, world, local_rank) from torchrun's environment; (0, 1, 0) when not launched by it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def train(settings: TrainingConfig, rows: dict[str, np.ndarray], base_ckpt: str | None, run_dir: str,
          stop_step: int = 0, device: str = "cpu", compile_model: bool = False,
          attn_implementation: str = "sdpa", log=print) -> dict:
    """Train LoRA on ``rows`` (from ``unpacked_rows``/``packed_rows``) and write the run-dir outputs.

    Returns:
        ``{"steps", "final_loss", "adapter_dir", "lora_ckpt"}`` (``lora_ckpt`` None when MindSpore is absent).

    Raises:
        ValueError: fewer rows than one global batch.
        RuntimeError: the loss stops being finite (the step is named).
    """
    import torch.distributed as dist

    from research.llama3.train.lr_schedule import mindformers_lr
    from research.llama3.config.model_config import LlamaDims

    rank, world, local_rank = _dist()
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
    peft_model = build_lora_model(base_ckpt, dims, settings.pet_config, dtype, attn_implementation).to(dev)
    counts = count_parameters((p.numel(), p.requires_grad) for p in peft_model.parameters())
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


def prepare_records(train_dataset: str, config_path: str, seq_length: int, output_dir: str,
                    template: str = DEFAULT_TEMPLATE) -> str:
    """Path of a MindRecord file for ``train_dataset``: itself, or a conversion of conversation JSON.

    Raises:
        FileNotFoundError: ``train_dataset`` does not exist.
        ValueError: neither ``.mindrecord`` nor ``.json``.
    """
    if not os.path.isfile(train_dataset):
        raise FileNotFoundError(f"training data not found: {train_dataset}")
    if train_dataset.endswith(".mindrecord"):
        return train_dataset
    if not train_dataset.endswith(".json"):
        raise ValueError(f"{train_dataset}: expected a .mindrecord file or conversation .json")
    from research.llama3.records.mindrecord import convert, load_conversations
    from preprocess.templates import get_template

    from research.llama3.tokenizers.tokenizer import tokenizer_from_config

    out = os.path.join(output_dir, "train.mindrecord")
    report = convert(load_conversations([train_dataset]), tokenizer_from_config(config_path),
                     get_template(template), seq_length, out)
    print(f"converted {train_dataset}: {report['records']} records -> {out} (dropped {len(report['dropped'])}, "
          f"skipped {len(report['skipped'])}; see {out}.report.json)")
    return out


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.llama3.train.torch_finetune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="MindFormers YAML (the same one the MindFormers entry uses)")
    parser.add_argument("--train_dataset", required=True, help="MindRecord file or conversation JSON")
    parser.add_argument("--load_checkpoint", default="",
                        help="base checkpoint (MindFormers names) or HF directory; empty = random")
    parser.add_argument("--output_dir", required=True, help="work directory (JSON input is converted here)")
    parser.add_argument("--run_dir", required=True, help="run directory for loss.jsonl, params.json, lora.ckpt, adapter/")
    parser.add_argument("--stop_step", type=int, default=0, help="stop after N steps (0: all epochs)")
    parser.add_argument("--seed", type=int, default=None, help="override the YAML seed")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when available")
    parser.add_argument("--packing", action="store_true", help="pack records into full rows (see above)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    parser.add_argument("--attn_implementation", default="sdpa", help="transformers attention backend")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE, help="chat template for JSON input")
    args = parser.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        settings = load_settings(args.config, args.seed)
        rank = _dist()[0]
        os.makedirs(args.output_dir, exist_ok=True)
        os.makedirs(args.run_dir, exist_ok=True)
        records = args.train_dataset
        if rank == 0:
            records = prepare_records(args.train_dataset, args.config, settings.seq_length, args.output_dir,
                                      args.template)
        elif not records.endswith(".mindrecord"):
            while not os.path.exists(os.path.join(args.output_dir, "train.mindrecord.report.json")):
                time.sleep(1)  # rank 0 converts the JSON
            records = os.path.join(args.output_dir, "train.mindrecord")
        ids, labels = read_mindrecord(records, settings.seq_length)
        make_rows = packed_rows if args.packing else unpacked_rows
        rows = make_rows(ids, labels, settings.pad_id, settings.ignore_id)
        if rank == 0:
            from preprocess.atomic import write_text_atomic

            effective = read_config(args.config)
            effective["torch_finetune"] = {**vars(args), "device": device, "rows": int(rows["tokens"].shape[0])}
            write_text_atomic(RunLayout(Path(args.run_dir)).config,
                              yaml.safe_dump(effective, sort_keys=False, allow_unicode=True))
        result = train(settings, rows, args.load_checkpoint or None, args.run_dir, args.stop_step, device,
                       args.compile, args.attn_implementation)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if _dist()[0] == 0:
        print(f"trained {result['steps']} steps, final loss {result['final_loss']:.4f}; "
              f"PEFT adapter: {result['adapter_dir']}; LoRA checkpoint: {result['lora_ckpt']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
