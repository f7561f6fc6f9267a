"""Command line: base-capability check on SQuAD v1.1-format data (``python -m eval.base --help``).

The contest's "original ability" test (data README): first question of each paragraph, the
contest prompt, first line of the generation, MindFormers ``EmF1Metric`` and the official SQuAD
v1.1 EM/F1 (:mod:`eval.squad`). With ``--baseline`` (the base model's metrics.json) each metric is
checked against the 90% rule. Writes ``predictions.jsonl``, ``metrics.json``, ``report.md`` and
``scores.png`` to ``--output_dir`` (atomically); exit status 0 also when the rule fails (the
verdict is in the report), 1 on bad input.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from eval.files import run_with_baseline
from eval.predictions import load_predictions
from eval.model_args import add_model_args, make_generator, model_source, positive_int
from eval.plots import plot_bars
from eval.squad import read_first_questions, render_prompt, retention, score_squad
from preprocess.atomic import write_json_atomic, write_jsonl_atomic, write_text_atomic
from preprocess.cli import Parser, run_main


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m eval.base", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--squad", required=True,
                   help="SQuAD v1.1-format JSON (SQuAD dev-v1.1.json, CMRC2018 squad-style-data)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--predictions", help='JSONL of {"id","generation"} to grade (no model is loaded)')
    add_model_args(p, src, max_new_tokens=64)
    p.add_argument("--output_dir", default="output/eval/base",
                   help="where outputs are written (default: %(default)s)")
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate only the first N items")
    p.add_argument("--baseline", default=None,
                   help="metrics.json of the base model's run; enables the retention check")
    p.add_argument("--ratio", type=float, default=0.9,
                   help="required fraction of the base score (contest: %(default)s)")
    return p


def _table(metrics: dict) -> str:
    lines = ["| metric | value | base | threshold | pass |", "|---|---:|---:|---:|---|"]
    checks = metrics.get("retention") or {}
    for family, names in (("mindformers", ("F1", "Em")), ("squad", ("f1", "exact_match"))):
        for name in names:
            key = f"{family}.{name}"
            c = checks.get(key)
            tail = (f"{c['base']:.2f} | {c['threshold']:.2f} | {'PASS' if c['pass'] else 'FAIL'}"
                    if c else "– | – | –")
            lines.append(f"| {key} | {metrics[family][name]:.2f} | {tail} |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, baseline: dict | None = None) -> dict:
    """Generate (model mode), grade, write the outputs; return the metrics dict."""
    started = time.time()
    items = read_first_questions(args.squad, limit=args.limit)
    rejected = []
    if args.predictions:
        rows, rejected, counts = load_predictions(args.predictions, [item["id"] for item in items], args.squad)
        predictions = {str(r["id"]): r["generation"] for r in rows}
        source = {"predictions": str(args.predictions), **counts}
    else:
        texts = make_generator(args)([render_prompt(item) for item in items])
        predictions = {item["id"]: text for item, text in zip(items, texts)}
        source = model_source(args)
    result = score_squad(items, predictions)
    out = Path(args.output_dir)
    metrics = {k: v for k, v in result.items() if k != "items"}
    metrics.update(squad_file=str(args.squad), limit=args.limit, source=source)
    if baseline:
        metrics["retention"] = retention(metrics, baseline, args.ratio)
        metrics["ratio"] = args.ratio
        metrics["pass"] = all(c["pass"] for c in metrics["retention"].values())
    metrics["wall_time_s"] = round(time.time() - started, 3)
    metrics["predictions_file"] = str(write_jsonl_atomic(out / "predictions.jsonl", result["items"]))
    metrics["rejected_file"] = str(write_jsonl_atomic(out / "rejected_predictions.jsonl", rejected))
    series = {"base": _flat(baseline), "this run": _flat(metrics)} if baseline else {"score": _flat(metrics)}
    metrics["plot_file"] = plot_bars(series, out / "scores.png", title="Base capability (SQuAD-style)",
                                     ylabel="score (%)", ylim=(0, 100))
    verdict = ("" if not baseline else
               f"\n90% rule (ratio {args.ratio}): **{'PASS' if metrics['pass'] else 'FAIL'}**\n")
    report = (f"# Base capability: {args.squad}\n\n{metrics['count']} items (first question per "
              f"paragraph), {metrics['missing']} without a prediction.\n\n{_table(metrics)}{verdict}\n"
              f"![scores](scores.png)\n")
    metrics["report_file"] = str(write_text_atomic(out / "report.md", report))
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def _flat(metrics: dict) -> dict[str, float]:
    return {f"{fam} {name}": metrics[fam][name]
            for fam, names in (("mindformers", ("F1", "Em")), ("squad", ("f1", "exact_match")))
            for name in names}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metrics, _ = run_with_baseline(run, args)
    print(_table(metrics), end="")
    if "pass" in metrics:
        print(f"90% rule: {'PASS' if metrics['pass'] else 'FAIL'}")
    print(f"predictions: {metrics['predictions_file']}  report: {metrics['report_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
