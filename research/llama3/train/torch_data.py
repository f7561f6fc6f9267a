"""What the PyTorch entry (``research.llama3.train.torch_finetune``) reads: the YAML's training settings
(:class:`TrainingConfig`) and the training rows, the records of a MindRecord file (or of conversation
JSON, converted first) one a row or packed. numpy only; no torch import."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from preprocess.templates import DEFAULT_TEMPLATE
from research.llama3.config.model_config import read_config


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
