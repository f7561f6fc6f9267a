"""LoRA fine-tuning with PyTorch + PEFT (CUDA fallback) from the same YAML and data as ``research.llama3.train.finetune``.

Usage (one GPU or CPU; several GPUs with ``torchrun --nproc_per_node N -m research.llama3.train.torch_finetune ...``)::

    python -m research.llama3.train.torch_finetune --config configs/smollm2_135m/finetune_lora_cpu.yaml \\
        --train_dataset data/train.mindrecord --load_checkpoint base.ckpt \\
        --output_dir work/output --run_dir logs/RUN [--stop_step N] [--seed S] [--device cpu|cuda] [--packing]
        [--quantization none|nf4|int8] [--gradient_checkpointing]

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
``--quantization nf4|int8`` trains the LoRA on a bitsandbytes-quantized frozen base (QLoRA;
``research.llama3.train.quantization``, which also merges such an adapter back). The adapter files are the same.
Needs ``peft`` (and ``bitsandbytes`` for ``--quantization``); MindSpore is used to read MindRecord and write ``lora.ckpt``.

Modules: this one (the YAML's settings and the command line), ``torch_data`` (records -> rows) and
``torch_loop`` (model, loss, the loop and its outputs).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import yaml

from preprocess.cli import Parser, UserError, reported_as, run_main
from preprocess.templates import DEFAULT_TEMPLATE
from research.llama3.config.model_config import read_config
from research.llama3.train.torch_data import load_settings, packed_rows, prepare_records, read_mindrecord, unpacked_rows
from research.llama3.train.quantization import QUANTIZATIONS
from research.rundir.layout import RunLayout

__all__ = ["main"]


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.llama3.train.torch_finetune", description=__doc__)
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
    parser.add_argument("--quantization", choices=QUANTIZATIONS, default="none",
                        help="quantize the frozen base with bitsandbytes: nf4 (QLoRA, double quantization) or int8")
    parser.add_argument("--gradient_checkpointing", action="store_true",
                        help="recompute decoder activations in the backward pass (less memory, slower)")
    args = parser.parse_args(argv)
    import torch  # after parsing: --help stays fast

    from research.llama3.train.torch_loop import dist_info, train

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    with reported_as(UserError, FileNotFoundError, KeyError, ValueError):
        settings = load_settings(args.config, args.seed)
        rank = dist_info()[0]
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
                       args.compile, args.attn_implementation, quantization=args.quantization,
                       gradient_checkpointing=args.gradient_checkpointing)
    if dist_info()[0] == 0:
        print(f"trained {result['steps']} steps, final loss {result['final_loss']:.4f}; "
              f"PEFT adapter: {result['adapter_dir']}; LoRA checkpoint: {result['lora_ckpt']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
