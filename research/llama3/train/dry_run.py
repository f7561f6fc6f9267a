"""CPU dry run of an Ascend YAML: the one place that maps its device-bound keys to what a CPU runs.

Everything a first Ascend run depends on besides the device -- optimizer, runner wrapper and loss
scale, LR schedule, callbacks, checkpoint settings, dataset and sink settings, LoRA config,
tokenizer and pad ids, seq_length, vocabulary -- stays exactly as the YAML says, so a CPU run of
the written YAML through the user's own entry points (``research/llama3/train/finetune.py``,
``eval.math``/``eval.base --backend mindformers``) builds and runs the same objects
(tests/research/train/test_ascend_dry_run.py, docs/ascend.md). Only the keys in :data:`DRY_RUN_KEYS` change:

* ``context.device_target``: ``CPU``.
* dtypes: ``bfloat16``/``float16`` compute and parameters have no CPU kernels (MatMul, RmsNorm); all
  float32.
* ``use_flash_attention``, ``fused_rms_norm``: Ascend fused kernels; ``use_rope_slice``: the
  BatchMatMul rotary path has no CPU kernel.
* ``hidden_size``, ``num_layers``, ``num_heads``, ``n_kv_heads``, ``intermediate_size``: 8B does not
  fit a host; reduced to 2 layers, ffn 128, head_dim 16 and the YAML's GQA ratio g = num_heads //
  n_kv_heads: max(1, 4 // g) kv heads and g times as many query heads (Llama3-8B, g 4: 4 heads over 1,
  hidden 64; Qwen2.5-7B, g 7: 7 over 1, hidden 112; Qwen2.5-32B, g 5: 5 over 1, hidden 80).
* ``use_parallel``, ``parallel.parallel_mode``, ``parallel_config.data_parallel`` /
  ``model_parallel`` / ``pipeline_stage``: MindSpore 2.9 cannot compile semi_auto_parallel on CPU
  ("Invalid backend: CPU"), so one process runs one card's share (its per-card batch_size).
* ``auto_trans_ckpt``: MindFormers' checkpoint transformation slices a checkpoint along the
  parallel strategy, which a single CPU process does not have.
* ``runner_config.batch_size``, ``train_dataset.batch_size``: the per-card batch, cut to at most
  :data:`DRY_BATCH_TOKENS` tokens a step. The 128,256-token vocabulary stays (the tokenizer's ids
  need it), and its ``[batch, seq_length, vocab]`` float32 logits at batch 16 x 256 took the
  host past 21 GB (measured, killed); the batch does not change what is built.
* ``train_dataset.num_parallel_workers``: capped at this host's cores (MindSpore refuses more: "exceeds
  the boundary between 1 and N"); an Atlas 800T A2 host has 192.

Usage::

    python -m research.llama3.train.dry_run --config configs/llama3_8b/finetune_lora_910b_4p.yaml \\
        --output work/dry_4p.yaml
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
from preprocess.cli import Parser

# Every key (dotted path into the YAML) the dry run may change; nothing else differs from the YAML.
DRY_RUN_KEYS = (
    "context.device_target",
    "model.model_config.compute_dtype",
    "model.model_config.layernorm_compute_type",
    "model.model_config.softmax_compute_type",
    "model.model_config.rotary_dtype",
    "model.model_config.param_init_type",
    "model.model_config.use_flash_attention",
    "model.model_config.fused_rms_norm",
    "model.model_config.use_rope_slice",
    "model.model_config.hidden_size",
    "model.model_config.num_layers",
    "model.model_config.num_heads",
    "model.model_config.n_kv_heads",
    "model.model_config.intermediate_size",
    "use_parallel",
    "parallel.parallel_mode",
    "parallel_config.data_parallel",
    "parallel_config.model_parallel",
    "parallel_config.pipeline_stage",
    "auto_trans_ckpt",
    "runner_config.batch_size",
    "train_dataset.batch_size",
    "train_dataset.num_parallel_workers",
)

DRY_HEAD_DIM, DRY_LAYERS, DRY_HEADS, DRY_FFN = 16, 2, 4, 128
DRY_BATCH_TOKENS = 512


def cpu_dry_run(config: dict) -> dict:
    """A copy of a resolved YAML (``research.llama3.config.model_config.read_config``) with only the
    :data:`DRY_RUN_KEYS` mapped to CPU (module doc gives each reason).

    Raises:
        KeyError: the YAML has no ``model.model_config`` or no ``context``.
    """
    dry = copy.deepcopy(config)
    dry["context"]["device_target"] = "CPU"
    mc = dry["model"]["model_config"]
    heads_per_kv = int(mc["num_heads"]) // int(mc.get("n_kv_heads") or mc["num_heads"])
    mc.update({key: "float32" for key in ("compute_dtype", "layernorm_compute_type", "softmax_compute_type",
                                          "rotary_dtype", "param_init_type")})
    kv_heads = max(1, DRY_HEADS // heads_per_kv)
    mc.update(use_flash_attention=False, fused_rms_norm=False, use_rope_slice=True,
              hidden_size=kv_heads * heads_per_kv * DRY_HEAD_DIM, num_layers=DRY_LAYERS,
              num_heads=kv_heads * heads_per_kv, n_kv_heads=kv_heads, intermediate_size=DRY_FFN)
    dry["use_parallel"] = False
    dry.setdefault("parallel", {})["parallel_mode"] = 0
    dry.setdefault("parallel_config", {}).update(data_parallel=1, model_parallel=1, pipeline_stage=1)
    dry["auto_trans_ckpt"] = False
    if "runner_config" in dry:
        batch = min(int(dry["runner_config"]["batch_size"]), max(1, DRY_BATCH_TOKENS // int(mc["seq_length"])))
        dry["runner_config"]["batch_size"] = dry["train_dataset"]["batch_size"] = batch
    if "train_dataset" in dry:
        workers = dry["train_dataset"].get("num_parallel_workers", 1)
        dry["train_dataset"]["num_parallel_workers"] = min(int(workers), os.cpu_count() or 1)
    return dry


def changed_keys(before: dict, after: dict, prefix: str = "") -> set[str]:
    """Dotted paths of the leaves that differ between two YAML mappings (added or removed included)."""
    keys = set()
    for key in set(before) | set(after):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys |= changed_keys(a, b, f"{prefix}{key}.")
        elif a != b or (key in before) != (key in after):
            keys.add(f"{prefix}{key}")
    return keys


def write_dry_run_yaml(config_path: str, output: str) -> dict:
    """Write the CPU dry-run YAML of ``config_path`` (``base_config`` resolved) to ``output``
    atomically; return it as a dict.

    Raises:
        FileNotFoundError: no such YAML.
    """
    import yaml

    from preprocess.atomic import write_text_atomic
    from research.llama3.config.model_config import read_config

    dry = cpu_dry_run(read_config(config_path))
    write_text_atomic(output, yaml.safe_dump(dry, sort_keys=False, allow_unicode=True))
    return dry


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.llama3.train.dry_run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="Ascend MindFormers YAML")
    parser.add_argument("--output", required=True, help="where the CPU dry-run YAML is written")
    args = parser.parse_args(argv)
    write_dry_run_yaml(args.config, args.output)
    print(f"wrote {args.output}: {', '.join(DRY_RUN_KEYS)} mapped to CPU; everything else as in {args.config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
