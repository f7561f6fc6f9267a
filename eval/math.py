"""Command line: grade math-reasoning generations (``python -m eval.math --help``).

Either score an existing predictions file or generate the predictions with a model first. Writes
``predictions.jsonl`` (each item plus ``generation``, ``extracted``, ``correct``; re-scorable with
``--predictions``), ``rejected_predictions.jsonl`` (bad lines of ``--predictions`` with file, line and
reason, :mod:`eval.predictions`) and ``metrics.json`` to ``--output_dir``, atomically, and prints the
Markdown accuracy table. Exit status 2 when ``--predictions`` is empty or none of its ids matches an
item; a partial match is a warning with counts.

Model options and loading are shared with the other evaluation CLIs (:mod:`eval.model_args`).
Also writes ``accuracy_by_category.png`` (before/after bars with ``--baseline``) and ``report.md``.

``--mode pot`` (program of thought) also executes the expression each generation ends with
(``算式：...``, :mod:`eval.pot`) and grades its value: metrics.json then has a ``tool_assisted``
section (accuracy overall and per category, and counts of generations without an expression or
whose expression failed to parse or evaluate) beside the tool-free ``overall``/``categories`` of
the same generations, and report.md shows both columns.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from eval.compare import DEFAULT_RULE, RULES, parse_rule
from eval.files import read_jsonl, run_with_baseline
from eval.predictions import load_predictions
from preprocess.atomic import write_json_atomic, write_jsonl_atomic, write_text_atomic
from eval.math_accuracy import LLAMA3_8B_PARAMS, accuracy_table, contest_score, score
from eval.math_items import read_math_items
from eval.pot import format_failures, score_pot
from eval.plots import accuracy_by_category, plot_bars
from preprocess.cli import Parser, run_main
from eval.model_args import (add_model_args, add_template_arg, load_model, make_generator, model_source,
                             positive_int, prompt_template)

__all__ = ["build_parser", "load_model", "main", "run"]


def _rule(value: str) -> str:
    try:
        parse_rule(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m eval.math",
        description="Grade math answers: the final number (or \\boxed{} content) of each generation "
                    "is compared with the item's reference answer; prints per-category accuracy.",
    )
    p.add_argument("--items", required=True,
                   help='JSONL of items: {"id","category","problem","answer"}, contest {"problem","solution"}, '
                        'GSM8K {"question","answer"} or CMATH {"question","golden"} (eval/math_items.py)')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--predictions",
                     help='JSONL of {"id","generation"} to grade (no model is loaded)')
    add_model_args(p, src, max_new_tokens=256)
    p.add_argument("--output_dir", default="output/eval",
                   help="where predictions.jsonl and metrics.json are written (default: %(default)s)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="evaluate only the first N items")
    p.add_argument("--rule", type=_rule, default=DEFAULT_RULE,
                   help=f"comparison rule: {', '.join(RULES)}; exact is the contest's rule, see "
                        f"eval/compare.py (default: %(default)s)")
    p.add_argument("--mode", choices=("cot", "pot"), default="cot",
                   help="cot: grade the final number written (tool-free); pot: also execute the "
                        "'算式：' expression and report tool-assisted accuracy beside it (default: %(default)s)")
    add_template_arg(p)
    p.add_argument("--fewshot", default=None,
                   help='JSONL of worked examples {"problem","target"}: the message becomes "问题：P\\n解答：T" '
                        'blocks, then "问题：<problem>\\n解答：", and each generation is cut at its first blank '
                        "line (model mode); e.g. configs/eval/pot_fewshot.jsonl with --template none for an "
                        "untrained model in --mode pot")
    p.add_argument("--baseline", default=None,
                   help="metrics.json of an earlier run; the table then shows before/after columns")
    p.add_argument("--trainable", type=int, default=None,
                   help="number of trainable parameters for the contest score in metrics.json "
                        "(default with --config: the YAML's LoRA count over its base count with --lora_checkpoint, "
                        "0 without one)")
    return p


def _predict(args: argparse.Namespace, items: list[dict]) -> list[dict]:
    template = prompt_template(args)
    lacking = [item.get("id") for item in items if "problem" not in item]
    if lacking:
        raise ValueError(f"items without a 'problem' to prompt with (ids {lacking[:5]})")
    examples = read_jsonl(args.fewshot, with_lines=True) if args.fewshot else []
    for line, ex in examples:
        if not isinstance(ex, dict) or not {"problem", "target"} <= set(ex):
            raise ValueError(f"{args.fewshot}:{line}: a few-shot example needs 'problem' and 'target'")
    shots = "".join(f"问题：{ex['problem']}\n解答：{ex['target']}\n\n" for _, ex in examples)
    messages = [f"{shots}问题：{item['problem']}\n解答：" if shots else item["problem"] for item in items]
    prompts = [template.render_prompt(m) if template else m for m in messages]
    # The worked examples are the same in every prompt: their KV cache is computed once (cut after
    # the last worked example, where the tokenization of the prefix alone matches the full prompt's).
    shared = os.path.commonprefix(prompts) if shots and len(prompts) > 1 else ""
    prefix = shared[:shared.rfind("\n\n") + 2] if "\n\n" in shared else ""
    texts = make_generator(args)(prompts, prefix=prefix, stop=("\n\n",) if shots else ())
    if shots:  # the answer ends where the next worked example would start (lm-eval-harness' "until")
        texts = [text.lstrip("\n").split("\n\n", 1)[0] for text in texts]
    return [{"id": item["id"], "generation": text} for item, text in zip(items, texts)]


def run(args: argparse.Namespace, baseline: dict | None = None) -> dict:
    """Grade (generating first in model mode), write outputs and the per-category plot (before/after
    bars when ``baseline`` metrics are given), and return the metrics dict."""
    started = time.time()
    items = read_math_items(args.items, limit=args.limit)
    # Tianchi sub-questions in a mixed eval.jsonl are graded by eval.logic (answer letters, votes).
    logic_items = sum("logic" in item for item in items)
    items = [item for item in items if "logic" not in item]
    if not items:
        raise ValueError(f"{args.items}: no math items ({logic_items} logic items: grade them with eval.logic)")
    rejected = []
    if args.predictions:
        predictions, rejected, counts = load_predictions(args.predictions, [item["id"] for item in items],
                                                          args.items)
        source = {"predictions": str(args.predictions), **counts}
    else:
        predictions = _predict(args, items)
        source = {**model_source(args), "template": args.template, "fewshot": args.fewshot}
    result = score(items, predictions, rule=args.rule)
    out = Path(args.output_dir)
    metrics = {k: v for k, v in result.items() if k != "items"}
    metrics.update(mode=args.mode, items_file=str(args.items), limit=args.limit, source=source,
                   skipped_logic_items=logic_items)
    if args.mode == "pot":
        tool = score_pot(items, predictions, rule=args.rule)
        for record, executed in zip(result["items"], tool["items"]):
            record.update(executed=executed["extracted"], tool_correct=executed["correct"],
                          pot_status=executed["pot_status"], pot_detail=executed["pot_detail"])
        metrics["tool_assisted"] = {k: v for k, v in tool.items() if k not in ("items", "rule", "missing")}
    metrics["wall_time_s"] = round(time.time() - started, 3)
    if args.trainable is not None:
        metrics["trainable"] = args.trainable
        metrics["contest_score"] = contest_score(metrics["overall"]["accuracy"], args.trainable)
    elif args.config:
        from research.llama3.config.config_check import model_yaml
        from research.llama3.train.param_count import lora_param_counts

        counts = lora_param_counts(model_yaml(args.config).model_config)
        # The run's own counts; the contest itself divides by Llama3-8B's 8,030M. Without an adapter
        # the model trains nothing, whatever LoRA the YAML describes (the run report's "before").
        trainable = counts["trainable"] if args.lora_checkpoint else 0
        metrics.update(trainable=trainable, base_params=counts["base"],
                       contest_score=contest_score(metrics["overall"]["accuracy"], trainable, total=counts["base"]))
    series = {"before": accuracy_by_category(baseline), "after": accuracy_by_category(metrics)} \
        if baseline else {"accuracy": accuracy_by_category(metrics)}
    if "tool_assisted" in metrics:
        series["tool-assisted (PoT)"] = accuracy_by_category(metrics["tool_assisted"])
    metrics["plot_file"] = plot_bars(series, out / "accuracy_by_category.png",
                                     title=f"Math accuracy by category (rule {args.rule})",
                                     ylabel="accuracy (%)", ylim=(0, 100))
    metrics["predictions_file"] = str(write_jsonl_atomic(out / "predictions.jsonl", result["items"]))
    metrics["rejected_file"] = str(write_jsonl_atomic(out / "rejected_predictions.jsonl", rejected))
    metrics["metrics_file"] = str(out / "metrics.json")
    metrics["report_file"] = str(write_text_atomic(out / "report.md", _report(metrics, baseline)))
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def _report(metrics: dict, baseline: dict | None) -> str:
    """report.md: the accuracy table (before/after with a baseline; tool-free and tool-assisted
    columns in PoT mode, with the expression failures per category), the rule, the contest
    score, the plot."""
    table = accuracy_table(metrics, baseline)
    if "tool_assisted" in metrics:
        table += ("\nTool-assisted: the expression after the last `算式：` is executed "
                  "(preprocess/answer/pot.py) and its value graded; expressions that could not be used:\n\n"
                  + format_failures(metrics["tool_assisted"]))
    score = (f"\nContest score (1 - {metrics['trainable']:,} / {metrics.get('base_params', LLAMA3_8B_PARAMS):,.0f}) x 0.3 "
             f"+ accuracy x 0.7 = **{metrics['contest_score']:.4f}**\n" if "contest_score" in metrics else "")
    return (f"# Math accuracy: {metrics['items_file']}\n\n{metrics['overall']['total']} items, "
            f"{metrics['missing']} without a prediction; rule `{metrics['rule']}` (eval/compare.py).\n\n"
            f"{table}{score}\n![accuracy by category](accuracy_by_category.png)\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metrics, baseline = run_with_baseline(run, args)
    print(accuracy_table(metrics, baseline), end="")
    print(f"rule={metrics['rule']} mode={metrics['mode']}  "
          f"predictions: {metrics['predictions_file']}  metrics: {metrics['metrics_file']}")
    if "contest_score" in metrics:
        print(f"contest score: {metrics['contest_score']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
