"""LoRA fine-tuning entry: a MindFormers YAML run through MindFormers' own Trainer.finetune flow.

Same code path on Ascend and CPU: only the YAML's ``context.device_target`` differs, plus the CPU
overflow-check shim (``cpu_shim``) that is applied when the target is CPU.

Usage::

    python -m research.llama3.finetune --config configs/smollm2_135m/finetune_lora_cpu.yaml \
        --train_dataset data/train.mindrecord --load_checkpoint base.ckpt \
        --output_dir work/output --run_dir logs/RUN [--stop_step N] [--seed S]

Outputs: ``<run_dir>/config.yaml`` (the effective config), ``<run_dir>/loss.jsonl`` (one line a step),
``<run_dir>/params.json`` (trainable/total parameters) and ``<run_dir>/lora.ckpt``, the LoRA-only
checkpoint (the trainable parameters of the last step, names as MindFormers saves them, e.g.
``model.layers.0.attention.wq.mindpet_delta_lora_a`` [rank, in] and ``..._lora_b`` [out, rank]).
"""
import argparse
import glob
import os
import shutil
import sys

import yaml

from research.llama3 import callbacks  # noqa: F401  (registers LossJsonlMonitor with MindFormers)


def build_config(config_path: str, train_dataset: str, load_checkpoint: str | None, output_dir: str,
                 run_dir: str, stop_step: int = 0, seed: int | None = None):
    """Load a MindFormers YAML and apply this run's paths and limits.

    Args:
        config_path: MindFormers YAML (``model.model_config`` with ``pet_config``, ``runner_config``...).
        train_dataset: MindRecord file (``input_ids``/``labels`` int32 of length seq_length + 1).
        load_checkpoint: base-model checkpoint in MindFormers names, or None to train from the
            YAML's initialisation (random weights; only for smoke tests).
        output_dir: MindFormers ``output_dir`` (checkpoints, strategy, MindFormers logs).
        run_dir: where the loss log and ``params.json`` go.
        stop_step: stop after this many steps (MindFormers ``TrainCallBack``); 0 = run all epochs.
            The learning-rate schedule then spans these steps when its ``total_steps`` is -1.
        seed: overrides the YAML seed.

    Returns:
        ``mindformers.MindFormerConfig``.

    Raises:
        FileNotFoundError: the YAML, dataset or checkpoint does not exist.
    """
    from mindformers import MindFormerConfig

    for path in (config_path, train_dataset, load_checkpoint):
        if path and not os.path.exists(path):
            raise FileNotFoundError(f"not found: {path}")
    config = MindFormerConfig(config_path)
    config.output_dir = os.path.abspath(output_dir)
    config.load_checkpoint = os.path.abspath(load_checkpoint) if load_checkpoint else ""
    config.train_dataset.data_loader.dataset_dir = os.path.abspath(train_dataset)
    config.train_dataset_task.dataset_config.data_loader.dataset_dir = os.path.abspath(train_dataset)
    if seed is not None:
        config.seed = seed
    batch = config.runner_config.batch_size
    seq = config.model.model_config.seq_length
    callbacks_cfg = [c for c in config.callbacks if c["type"] not in ("TrainCallBack", "LossJsonlMonitor")]
    callbacks_cfg.append({"type": "LossJsonlMonitor", "path": os.path.join(os.path.abspath(run_dir), "loss.jsonl"),
                          "tokens_per_step": batch * seq})
    if stop_step:
        # MindFormers 1.9 reads runner_config.stop_step but never adds the callback it builds for it,
        # so the YAML-level TrainCallBack is the one that actually stops the run.
        callbacks_cfg.append({"type": "TrainCallBack", "stop_step": stop_step})
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
        RuntimeError: training produced no trainable-parameter checkpoint (check that a
            ``CheckpointMonitor`` with ``save_trainable_params: True`` is configured).
    """
    from mindformers import Trainer
    from mindformers.core.context import build_context
    from research.llama3 import cpu_shim

    build_context(config)
    cpu_shim.apply_if_cpu()
    trainer = Trainer(config)
    trainer.finetune(finetune_checkpoint=config.load_checkpoint or False)

    pattern = os.path.join(config.output_dir, "checkpoint_trainable", "rank_0", "*.ckpt")
    saved = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not saved:
        raise RuntimeError(f"no LoRA checkpoint under {pattern}; does the YAML's CheckpointMonitor "
                           f"set save_trainable_params: True?")
    run_dir = os.path.dirname([c for c in config.callbacks if c["type"] == "LossJsonlMonitor"][0]["path"])
    target = os.path.join(run_dir, "lora.ckpt")
    shutil.copyfile(saved[-1], target + ".tmp")
    os.replace(target + ".tmp", target)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="MindFormers YAML")
    parser.add_argument("--train_dataset", required=True, help="MindRecord file from preprocess.mindrecord")
    parser.add_argument("--load_checkpoint", default="", help="base checkpoint (MindFormers names); "
                        "empty = the YAML's random initialisation")
    parser.add_argument("--output_dir", required=True, help="MindFormers output_dir")
    parser.add_argument("--run_dir", required=True, help="run directory for loss.jsonl, params.json, lora.ckpt")
    parser.add_argument("--stop_step", type=int, default=0, help="stop after N steps (0: all epochs)")
    parser.add_argument("--seed", type=int, default=None, help="override the YAML seed")
    args = parser.parse_args(argv)
    os.makedirs(args.run_dir, exist_ok=True)
    config = build_config(args.config, args.train_dataset, args.load_checkpoint or None, args.output_dir,
                          args.run_dir, args.stop_step, args.seed)
    with open(os.path.join(args.run_dir, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(_plain(config.to_dict()), f, sort_keys=False, allow_unicode=True)
    lora = run_finetune(config)
    print(f"LoRA checkpoint: {lora}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
