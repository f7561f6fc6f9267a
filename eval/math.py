"""Command line: grade math-reasoning generations (``python -m eval.math --help``).

Either score an existing predictions file or generate the predictions with a model first. Writes
``predictions.jsonl`` (each item plus ``generation``, ``extracted``, ``correct``; re-scorable with
``--predictions``) and ``metrics.json`` to ``--output_dir``, atomically, and prints the Markdown
accuracy table.

Model loading lives in :func:`load_model` alone so other checkpoint formats (a MindFormers
checkpoint loader) can be added there without touching the rest.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from eval.compare import RULES, parse_rule
from eval.files import read_jsonl
from preprocess.atomic import write_json_atomic, write_jsonl_atomic
from eval.math_accuracy import contest_score, format_table, score

DTYPES = ("auto", "float32", "float16", "bfloat16")


def _rule(value: str) -> str:
    try:
        parse_rule(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _positive_int(value: str) -> int:
    n = int(value)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return n


def _non_negative_float(value: str) -> float:
    x = float(value)
    if not x >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return x


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m eval.math",
        description="Grade math answers: the final number (or \\boxed{} content) of each generation "
                    "is compared with the item's reference answer; prints per-category accuracy.",
    )
    p.add_argument("--items", required=True,
                   help='JSONL of items {"id","category","problem","answer"} to evaluate')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--predictions",
                     help='JSONL of {"id","generation"} to grade (no model is loaded)')
    src.add_argument("--hf_model_dir",
                     help="directory of a saved transformers causal LM and its tokenizer; "
                          "greedy generations are made for the items' prompts")
    src.add_argument("--load_checkpoint",
                     help="MindFormers base checkpoint; with --config (model dims, tokenizer, LoRA "
                          "alpha/rank) it is converted to a transformers model for generation")
    p.add_argument("--config", default=None,
                   help="MindFormers YAML of the checkpoint (needed with --load_checkpoint)")
    p.add_argument("--lora_checkpoint", default=None,
                   help="LoRA-only MindFormers checkpoint merged into --load_checkpoint (scaled alpha/rank)")
    p.add_argument("--output_dir", default="output/eval",
                   help="where predictions.jsonl and metrics.json are written (default: %(default)s)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="evaluate only the first N items")
    p.add_argument("--rule", type=_rule, default="relative",
                   help=f"comparison rule: {', '.join(RULES)}; see eval/compare.py (default: %(default)s)")
    p.add_argument("--tol", type=_non_negative_float, default=1e-6,
                   help="tolerance of the absolute and relative rules (default: %(default)s)")
    p.add_argument("--max_new_tokens", type=_positive_int, default=256,
                   help="generation length limit per item (model mode; default: %(default)s)")
    p.add_argument("--batch_size", type=_positive_int, default=8,
                   help="prompts per generation batch (model mode; default: %(default)s)")
    p.add_argument("--template", default="vicuna_v1.1",
                   help="chat template from preprocess/templates.py used to render prompts "
                        "(model mode; must match the one used in training; default: %(default)s)")
    p.add_argument("--device", default=None,
                   help="torch device for the model (model mode); default: cuda if available, else cpu")
    p.add_argument("--dtype", choices=DTYPES, default="auto",
                   help="weights dtype (model mode); auto = as saved in the checkpoint config (default: %(default)s)")
    p.add_argument("--baseline", default=None,
                   help="metrics.json of an earlier run; the table then shows before/after columns")
    p.add_argument("--trainable", type=int, default=None,
                   help="number of trainable parameters; adds the contest score to metrics.json")
    return p


def load_model(args: argparse.Namespace):
    """Return ``(model, tokenizer)`` for generation, from the model options in ``args``.

    Either ``--hf_model_dir`` (transformers ``from_pretrained`` directory) or ``--load_checkpoint``
    with ``--config`` (a MindFormers checkpoint, plus ``--lora_checkpoint``, converted in memory:
    on CPU MindFormers has no KV-cache kernels, so generation runs through transformers).

    Raises:
        ValueError: no model option given, or ``--load_checkpoint`` without ``--config``.
    """
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.load_checkpoint:
        import yaml

        from research.llama3.model_config import LlamaDims
        from research.llama3.to_hf import build_hf_model
        from research.llama3.tokenizer import tokenizer_from_config

        if not args.config:
            raise ValueError("--load_checkpoint needs --config (the YAML the checkpoint was trained with)")
        with open(args.config, encoding="utf-8") as fh:
            model_config = yaml.safe_load(fh)["model"]["model_config"]
        pet = model_config.get("pet_config") or {}
        model = build_hf_model(args.load_checkpoint, LlamaDims.from_mindformers(model_config),
                               lora_ckpt=args.lora_checkpoint, lora_alpha=pet.get("lora_alpha", 16),
                               lora_rank=pet.get("lora_rank", 8))
        if args.dtype != "auto":
            model = model.to(getattr(torch, args.dtype))
        return model.to(device).eval(), tokenizer_from_config(args.config).hf

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not args.hf_model_dir:
        raise ValueError("no model to load: pass --hf_model_dir or --load_checkpoint")
    dtype = args.dtype if args.dtype == "auto" else getattr(torch, args.dtype)
    tokenizer = AutoTokenizer.from_pretrained(args.hf_model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.hf_model_dir, dtype=dtype)
    return model.to(device).eval(), tokenizer


def _predict(args: argparse.Namespace, items: list[dict]) -> list[dict]:
    from eval.generate import generate
    from preprocess.templates import get_template

    template = get_template(args.template)
    lacking = [item.get("id") for item in items if "problem" not in item]
    if lacking:
        raise ValueError(f"items without a 'problem' to prompt with (ids {lacking[:5]})")
    model, tokenizer = load_model(args)
    prompts = [template.render_prompt(item["problem"]) for item in items]
    texts = generate(model, tokenizer, prompts, args.max_new_tokens, batch_size=args.batch_size)
    return [{"id": item["id"], "generation": text} for item, text in zip(items, texts)]


def run(args: argparse.Namespace) -> dict:
    """Grade (generating first in model mode), write outputs, and return the metrics dict."""
    started = time.time()
    items = read_jsonl(args.items, limit=args.limit)
    if args.predictions:
        predictions = read_jsonl(args.predictions)
        source = {"predictions": str(args.predictions)}
    else:
        predictions = _predict(args, items)
        source = {"hf_model_dir": args.hf_model_dir, "load_checkpoint": args.load_checkpoint,
                  "lora_checkpoint": args.lora_checkpoint, "config": args.config, "template": args.template,
                  "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size}
    result = score(items, predictions, rule=args.rule, tol=args.tol)
    out = Path(args.output_dir)
    metrics = {k: v for k, v in result.items() if k != "items"}
    metrics.update(items_file=str(args.items), limit=args.limit, source=source,
                   wall_time_s=round(time.time() - started, 3))
    if args.trainable is not None:
        metrics["trainable"] = args.trainable
        metrics["contest_score"] = contest_score(metrics["overall"]["accuracy"], args.trainable)
    metrics["predictions_file"] = str(write_jsonl_atomic(out / "predictions.jsonl", result["items"]))
    metrics["metrics_file"] = str(out / "metrics.json")
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        baseline = None
        if args.baseline:  # read first: a bad path should not cost a generation run
            with open(args.baseline, encoding="utf-8") as fh:
                baseline = json.load(fh)
        metrics = run(args)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    table = format_table(baseline, metrics) if baseline else format_table(metrics)
    print(table, end="")
    print(f"rule={metrics['rule']} tol={metrics['tol']}  "
          f"predictions: {metrics['predictions_file']}  metrics: {metrics['metrics_file']}")
    if "contest_score" in metrics:
        print(f"contest score: {metrics['contest_score']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
