"""LoRA fine-tuning entry: a MindFormers YAML run through MindFormers' own Trainer.finetune flow.

Same code path on Ascend and CPU: only the YAML's ``context.device_target`` differs, plus the CPU
overflow-check shim (``cpu_shim``) that is applied when the target is CPU.

Usage::

    python -m research.llama3.train.finetune --config configs/smollm2_135m/finetune_lora_cpu.yaml \\
        --train_dataset data/train.mindrecord --load_checkpoint base.ckpt \\
        --output_dir work/output --run_dir logs/RUN [--stop_step N] [--seed S] [--save_steps N] [--resume]

Several ranks: start it through ``scripts/msrun_launcher.sh`` (msrun), with a YAML that sets
``use_parallel: True``; each rank reads its ``RANK_ID`` from msrun.

Outputs of rank 0 in ``<run_dir>`` (other ranks in ``<run_dir>/rank_<N>/``): ``config.yaml`` (the
effective config), ``loss.jsonl`` (one line a step, with tokens/s and peak memory), ``params.json``
(trainable/total parameters) and ``lora.ckpt``, the LoRA-only checkpoint (the trainable parameters of
the last step, names as MindFormers saves them, e.g. ``model.layers.0.attention.wq.mindpet_delta_lora_a``
[rank, in] and ``..._lora_b`` [out, rank]).
Checkpoints in ``<output_dir>`` (MindFormers' layout, one ``rank_<N>/`` each; the YAML's
``CheckpointMonitor`` is built as ``callbacks.FiniteCheckpointMonitor``, which skips NaN/Inf steps):
``checkpoint/`` the full
state every ``--save_steps`` steps (what ``--resume`` continues from), ``checkpoint_trainable/`` the LoRA
weights at the same steps, ``checkpoint_epoch/`` the LoRA weights at every epoch end.

Exit status: 0 done; 2 the YAML fails ``config_check`` (misspelt key, unregistered type...; nothing
is started); 3 the loss became NaN/Inf (the newest checkpoint is the last good one).
"""
import argparse
import glob
import os
import shutil
import sys
from pathlib import Path

import yaml

from preprocess.atomic import write_text_atomic
from research.llama3.config.config_check import ConfigError
from research.llama3.records.mindrecord import PACKED_COLUMNS
from research.llama3.train.resume import find_resume_point, truncate_loss_log
from research.rundir.layout import RunLayout
from preprocess.cli import Parser, UserError, quiet_imports, reported_as, run_main, wants_verbose


def rank_id() -> int:
    """This process's rank: msrun exports ``RANK_ID`` to each worker (MindFormers' ``get_real_rank`` reads it too)."""
    return int(os.environ.get("RANK_ID", "0"))


def rank_run_dir(run_dir: str) -> str:
    """``run_dir`` for rank 0, ``run_dir/rank_<N>`` for the others, so ranks never write the same file."""
    rank = rank_id()
    return os.path.abspath(run_dir if rank == 0 else os.path.join(run_dir, f"rank_{rank}"))


def global_batch(config) -> int:
    """Samples per optimizer step: the per-device ``batch_size`` x ``data_parallel`` (1 without use_parallel)."""
    return config.runner_config.batch_size * (config.parallel_config.data_parallel if config.use_parallel else 1)


def steps_per_epoch(train_dataset: str, config) -> int:
    """Optimizer steps in one epoch: records // global batch (the dataset drops the remainder)."""
    import mindspore.dataset as ds

    records = ds.MindDataset(train_dataset, columns_list=["input_ids"]).get_dataset_size()
    return max(1, records // global_batch(config))


def packed_records(train_dataset: str) -> bool:
    """Whether the MindRecord was written with ``--packing`` (it has the mask columns,
    ``research.llama3.records.mindrecord.PACKED_COLUMNS``, which the Trainer must then pass to the model)."""
    from mindspore.mindrecord import FileReader

    reader = FileReader(train_dataset)
    try:
        return "attention_mask" in reader.schema()
    finally:
        reader.close()


def build_config(config_path: str, train_dataset: str, load_checkpoint: str | None, output_dir: str,
                 run_dir: str, stop_step: int = 0, seed: int | None = None, save_steps: int = 0,
                 resume: bool = False):
    """Load a MindFormers YAML and apply this run's paths and limits.

    Args:
        config_path: MindFormers YAML (``model.model_config`` with ``pet_config``, ``runner_config``...).
        train_dataset: MindRecord file (``input_ids``/``labels`` int32 of length seq_length + 1).
        load_checkpoint: base-model checkpoint in MindFormers names, or None to train from the
            YAML's initialisation (random weights; only for smoke tests).
        output_dir: MindFormers ``output_dir`` (checkpoints, strategy, MindFormers logs).
        run_dir: where the loss log and ``params.json`` go (``rank_<N>/`` below it for ranks > 0).
        stop_step: stop after this many steps (MindFormers ``TrainCallBack``); 0 = run all epochs.
            The learning-rate schedule then spans these steps when its ``total_steps`` is -1.
            Counted from the start of training, also when resuming.
        seed: overrides the YAML seed.
        save_steps: save the full state and the LoRA weights every N steps (``CheckpointMonitor``'s
            ``save_checkpoint_steps``); 0 keeps the YAML's value.
        resume: continue from the newest full-state checkpoint in ``output_dir/checkpoint``
            (MindFormers ``resume_training``: weights, optimizer state, step, data position); without
            one, start from ``load_checkpoint``. The loss log keeps its lines up to that step.
            Resuming turns ``auto_trans_ckpt`` off: those checkpoints are already one per rank.

    Returns:
        ``mindformers.MindFormerConfig``.

    Raises:
        FileNotFoundError: the YAML, dataset or checkpoint does not exist.
        config_check.ConfigError: the YAML does not match the MindFormers 1.9 schema (unknown key,
            unregistered type...), before anything else is read.
        ValueError: resuming from a checkpoint at or past ``stop_step``; packed records (mask columns)
            with a flash-attention YAML.
    """
    from mindformers import MindFormerConfig
    from research.llama3.config.config_check import validate_config

    validate_config(config_path)  # misspelt keys would otherwise reach graph compilation
    for path in (config_path, train_dataset, load_checkpoint):
        if path and not os.path.exists(path):
            raise FileNotFoundError(f"not found: {path}")
    config = MindFormerConfig(config_path)
    config.output_dir = os.path.abspath(output_dir)
    config.load_checkpoint = os.path.abspath(load_checkpoint) if load_checkpoint else ""
    config.train_dataset.data_loader.dataset_dir = os.path.abspath(train_dataset)
    if packed_records(train_dataset):
        if config.model.model_config.get("use_flash_attention"):
            # Flash attention reads a uint8 mask as 1 = hidden; the records' mask is additive (dense path).
            raise ValueError(f"{train_dataset} is packed for dense attention; {config_path} uses flash "
                             f"attention (write the MindRecord without --packing)")
        config.train_dataset.input_columns = ["input_ids", "labels", *PACKED_COLUMNS]
    # The task reads the train_dataset section: the YAML anchor joining them does not survive a
    # base_config merge, where a variant's batch_size only reaches train_dataset.
    config.train_dataset_task.dataset_config = config.train_dataset
    if seed is not None:
        config.seed = seed
    tokens_per_step = global_batch(config) * config.model.model_config.seq_length
    loss_log = str(RunLayout(Path(rank_run_dir(run_dir))).loss_log)
    done = 0
    point = find_resume_point(config.output_dir, rank_id()) if resume else None
    if point:
        config.load_checkpoint = point.checkpoint_dir
        config.resume_training = True
        # The per-rank checkpoints are already sliced for this run's strategy. With auto_trans_ckpt
        # MindFormers would transform them again, without their source strategy, and stop with
        # "src_strategy should not be None when src_checkpoint is sliced" (tests/research/train/test_ascend_dry_run.py).
        config.auto_trans_ckpt = False
        done = point.step
        if stop_step and done >= stop_step:
            raise ValueError(f"{point.checkpoint} is at step {done}, already at --stop_step {stop_step}")
        truncate_loss_log(loss_log, done)
    elif os.path.exists(loss_log):
        os.remove(loss_log)  # a fresh run in a reused run_dir starts a fresh log
    callbacks_cfg = [{"type": "LossJsonlMonitor", "path": loss_log, "tokens_per_step": tokens_per_step,
                      "initial_step": done}]
    for cb in config.callbacks:
        if cb["type"] in ("TrainCallBack", "LossJsonlMonitor", "EpochLoraCheckpoint"):
            continue
        if cb["type"] == "CheckpointMonitor" and save_steps:
            cb = {**cb, "save_checkpoint_steps": save_steps}
        callbacks_cfg.append(cb)
    callbacks_cfg.append({"type": "EpochLoraCheckpoint", "steps_per_epoch": steps_per_epoch(train_dataset, config),
                          "directory": os.path.join(config.output_dir, "checkpoint_epoch", f"rank_{rank_id()}"),
                          "initial_step": done})
    if stop_step:
        # MindFormers 1.9 reads runner_config.stop_step but never adds the callback it builds for it,
        # so the YAML-level TrainCallBack is the one that actually stops the run. It counts the steps
        # of this process only, so a resumed run stops after the steps still to do.
        callbacks_cfg.append({"type": "TrainCallBack", "stop_step": stop_step - done})
        config.runner_config.stop_step = stop_step
        # total_steps -1 means the dataset's full epochs; warm-up and decay must fit the steps we run.
        if config.lr_schedule.get("total_steps", -1) in (-1, None):
            config.lr_schedule.total_steps = stop_step
    config.callbacks = callbacks_cfg
    return config


def _plain(value):
    """YAML-safe copy of a config: MindFormers adds its own objects (e.g. StableRankConfig) to it."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def run_finetune(config) -> str:
    """Run ``Trainer.finetune`` and return the path of the LoRA-only checkpoint copied to run_dir.

    Raises:
        callbacks.NonFiniteLossError: the loss became NaN/Inf (nothing of that step was saved).
        RuntimeError: training produced no trainable-parameter checkpoint (check that a
            ``CheckpointMonitor`` with ``save_trainable_params: True`` is configured).
    """
    from mindformers import Trainer
    from mindformers.core.context import build_context
    from research.llama3.train import cpu_shim

    build_context(config)
    cpu_shim.apply_if_cpu()
    trainer = Trainer(config)
    trainer.finetune(finetune_checkpoint=config.load_checkpoint or False)

    pattern = os.path.join(config.output_dir, "checkpoint_trainable", f"rank_{rank_id()}", "*.ckpt")
    saved = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not saved:
        raise RuntimeError(f"no LoRA checkpoint under {pattern}; does the YAML's CheckpointMonitor "
                           f"set save_trainable_params: True?")
    run_dir = os.path.dirname([c for c in config.callbacks if c["type"] == "LossJsonlMonitor"][0]["path"])
    target = str(RunLayout(Path(run_dir)).lora)
    shutil.copyfile(saved[-1], target + ".tmp")
    os.replace(target + ".tmp", target)
    return target


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.llama3.train.finetune", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="MindFormers YAML")
    parser.add_argument("--train_dataset", required=True, help="MindRecord file from research.llama3.records.mindrecord")
    parser.add_argument("--load_checkpoint", default="", help="base checkpoint (MindFormers names); "
                        "empty = the YAML's random initialisation")
    parser.add_argument("--output_dir", required=True, help="MindFormers output_dir")
    parser.add_argument("--run_dir", required=True, help="run directory for loss.jsonl, params.json, lora.ckpt")
    parser.add_argument("--stop_step", type=int, default=0, help="stop after N steps (0: all epochs)")
    parser.add_argument("--seed", type=int, default=None, help="override the YAML seed")
    parser.add_argument("--save_steps", type=int, default=0,
                        help="full-state + LoRA checkpoint every N steps (0: the YAML's save_checkpoint_steps)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest full-state checkpoint in --output_dir (fresh start if none)")
    args = parser.parse_args(argv)
    for option, path in (("--config", args.config), ("--train_dataset", args.train_dataset),
                         ("--load_checkpoint", args.load_checkpoint)):
        if path and not os.path.isfile(path):
            raise UserError(f"{option} {path}: no such file")
    with quiet_imports(wants_verbose(argv)):
        # Registers LossJsonlMonitor, EpochLoraCheckpoint (callbacks) and ObsCheckpointUploader with
        # MindFormers for the YAML's callbacks; imported after parsing so that --help is fast.
        from research.llama3.train import callbacks
        from research.obs import callback as _obs_callback  # noqa: F401
    run_dir = rank_run_dir(args.run_dir)
    os.makedirs(run_dir, exist_ok=True)
    with reported_as(UserError, ConfigError):
        config = build_config(args.config, args.train_dataset, args.load_checkpoint or None, args.output_dir,
                              args.run_dir, args.stop_step, args.seed, args.save_steps, args.resume)
    if config.resume_training:
        print(f"resuming from {config.load_checkpoint}", flush=True)
    write_text_atomic(RunLayout(Path(run_dir)).config,
                      yaml.safe_dump(_plain(config.to_dict()), sort_keys=False, allow_unicode=True))
    try:
        lora = run_finetune(config)
    except callbacks.NonFiniteLossError as exc:
        point = find_resume_point(config.output_dir, rank_id())
        print(f"error: {exc}\nlast good checkpoint: {point.checkpoint if point else '(none saved yet)'}",
              file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        hint = RunLayout(Path(args.run_dir)).resume_hint
        print(f"\ninterrupted; {hint} (or this command again with --resume)", file=sys.stderr)
        return 130
    print(f"LoRA checkpoint: {lora}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
