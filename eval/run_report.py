"""Assemble ``report.md``, ``loss.png`` and ``loss.csv`` for a fine-tuning run directory written by scripts/finetune.sh.

Usage: ``python -m eval.run_report --run_dir logs/RUN [--wall_s SECONDS]``

Reads the run's ``run.json`` (settings, data hashes, code version, stage status and times) and what
the stages left in the run directory, at the paths :class:`research.rundir.layout.RunLayout` names
(missing pieces are reported as missing, not guessed): ``config.yaml``, ``data/report.json``,
``train.mindrecord.report.json``, ``params.json``, ``loss.jsonl``, ``eval/math_{base,lora}/metrics.json``
(math) and ``eval/logic_{base,lora}/metrics.json`` (``eval.logic``) when the run has logic items.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

from eval.files import read_jsonl
from eval.logic_report import run_section as logic_run_section
from eval.math_accuracy import accuracy_table, contest_score, rule_table, wrong_examples
from eval.pot import format_failures
from eval.report import plot_loss, read_loss_log, write_report
from preprocess.atomic import write_text_atomic
from preprocess.budget import render_table
from preprocess.styles import TARGET_STYLE
from research.rundir.layout import RunLayout
from research.rundir.manifest import Manifest
from preprocess.cli import Parser, UserError, run_main

MISSING = "(missing: the stage did not run or failed)"


def _load_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def training_summary(run_dir: Path) -> dict:
    """Steps, first/last loss (mean of up to 5 steps), step time, tokens/s and peak memory from ``loss.jsonl``.

    The first step is left out of the timing: in graph mode it includes compilation. Peak memory is
    the largest per-step value logged (host RSS; device memory too when training ran on a device).
    """
    log = RunLayout(run_dir).loss_log
    steps, losses = read_loss_log(log)
    rows = read_jsonl(log)
    timed = rows[1:] or rows
    k = min(5, len(losses))
    summary = {
        "steps": steps[-1],
        f"loss, first {k} steps (mean)": round(statistics.fmean(losses[:k]), 4),
        f"loss, last {k} steps (mean)": round(statistics.fmean(losses[-k:]), 4),
        "first step incl. graph compile (s)": rows[0].get("step_s"),
        "median step time after the first (s)": round(statistics.median(r["step_s"] for r in timed), 3),
        "training wall time (s)": rows[-1].get("elapsed_s"),
    }
    if "tokens_per_s" in timed[0]:
        summary["median throughput (tokens/s, padded)"] = statistics.median(r["tokens_per_s"] for r in timed)
    for key, label in (("peak_host_mb", "peak host memory (MB)"), ("peak_device_mb", "peak device memory (MB)")):
        if any(key in r for r in rows):
            summary[label] = max(r.get(key, 0) for r in rows)
    return summary


def write_loss_csv(loss_log: Path, csv_path: Path) -> Path:
    """``loss.jsonl`` as CSV (one row a step, one column per logged field), written atomically."""
    import pandas as pd

    return write_text_atomic(csv_path, pd.read_json(loss_log, lines=True).to_csv(index=False))


def _targets(target_style: str, cot_style: str) -> str:
    return TARGET_STYLE.get(target_style, TARGET_STYLE["cot"]).describe(cot_style)


def manifest_sections(manifest: Manifest | None) -> dict:
    """The run's settings (``Run settings``) and its stages' status and time (``Stages``) from ``run.json``."""
    if manifest is None:
        return {"Run settings": "(missing: no run.json; the run was not made by python -m research.run)"}
    s = manifest.settings
    settings = {"code version": manifest.data.get("code_version"), "config": s.get("config"),
                "base checkpoint": s.get("load_checkpoint") or s.get("base_source"),
                "tokenizer file": s.get("vocab_file") or "(the YAML's processor.tokenizer)",
                "chat template": s.get("template"),
                "training targets": _targets(s.get("target_style", "cot"), s.get("cot_style", "steps")), "seq_length": s.get("seq_length"), "seed": s.get("seed"),
                "backend / workers": f"{s.get('backend')} / {s.get('worker_num')}",
                "evaluation": f"{s.get('task')} on {s.get('eval_data') or 'the held-out split'} "
                              f"({s.get('eval_backend')})"}
    for entry in manifest.data.get("data", []):
        settings[f"data: {Path(entry['path']).name}"] = f"sha256 {entry['sha256'][:16]}, {entry['bytes']} bytes"
    stages = "| stage | status | seconds |\n|---|---|---|\n" + "".join(
        f"| {name} | {rec.get('status')} | {rec.get('seconds')} |\n" for name, rec in manifest.stages.items()
        if name != "report")  # this stage is the one writing the table
    return {"Run settings": settings, "Stages": stages}


def _predictions(layout: RunLayout, model: str) -> list[dict] | None:
    path = layout.eval_dir("math", model) / "predictions.jsonl"
    return read_jsonl(path) if path.is_file() else None


def rule_sections(layout: RunLayout) -> dict:
    """``Tool-free accuracy by rule`` (:func:`eval.math_accuracy.rule_table`) and ``Wrong tool-free
    predictions`` (of the trained model, :func:`eval.math_accuracy.wrong_examples`) from the math
    evals' ``predictions.jsonl``; nothing without the "after" predictions."""
    before, after = _predictions(layout, "base"), _predictions(layout, "lora")
    if after is None:
        return {}
    return {
        "Tool-free accuracy by rule": (
            "The model's own final number (no expression executed). `exact` is the contest's rule and the "
            "headline; `printed` accepts a correctly rounded answer of at least 5 digits; `fewer_decimals` "
            "rounds both numbers to the fewer decimals of the two, as the contest teams' own scorers did: "
            "**not the official rule** (eval/compare.py).\n\n" + rule_table(before, after)),
        "Wrong tool-free predictions (after, up to 2 per category)": wrong_examples(after),
    }


def build_sections(run_dir: Path, wall_s: float | None = None) -> dict:
    """Return the report's sections (heading -> body) for :func:`eval.report.write_report`.

    Raises:
        ValueError: ``run.json`` exists but is not a valid manifest (names the file).
    """
    layout = RunLayout(run_dir)
    sections = {}
    config = yaml.safe_load(layout.config.read_text(encoding="utf-8")) if layout.config.is_file() else None
    run = {"run directory": str(run_dir)}
    if wall_s is not None:
        run["wall time, whole job (s)"] = wall_s
    if config:
        mc = config["model"]["model_config"]
        pet = mc.get("pet_config") or {}
        run.update({
            "model": f"{config['model']['arch']['type']}: hidden {mc['hidden_size']}, layers {mc['num_layers']}, "
                     f"heads {mc['num_heads']}/{mc.get('n_kv_heads')}, vocab {mc['vocab_size']}",
            "base checkpoint": config.get("load_checkpoint") or "(random initialisation)",
            "LoRA": f"rank {pet.get('lora_rank')}, alpha {pet.get('lora_alpha')}, dropout {pet.get('lora_dropout')}, "
                    f"target {pet.get('target_modules')!r}",
            "seq_length / batch": f"{mc['seq_length']} / {config['runner_config']['batch_size']}",
            "device / mode": f"{config['context']['device_target']} / "
                             f"{'graph' if config['context'].get('mode', 0) == 0 else 'pynative'}",
        })
    sections["Run"] = run
    sections.update(manifest_sections(Manifest.load(layout)))

    data = _load_json(layout.data_report)
    if data:
        sections["Data"] = {k: data[k] for k in ("read", "rejected", "duplicates", "kept", "verified",
                                                  "verify_failed", "train", "eval") if k in data}
        sections["Data per category"] = data.get("per_category", {})
    else:
        sections["Data"] = MISSING
    records = _load_json(layout.mindrecord_report)
    # The conversion report lists every truncated/dropped/shortened/skipped sample; the run report counts them.
    sections["MindRecord"] = ({"records": records["records"], "truncated": len(records["truncated"]),
                               "dropped": len(records["dropped"]),
                               "shortened to fallback": len(records.get("shortened", [])),
                               "skipped": len(records["skipped"]),
                               "pad share": records["pad_share"], "seq_length": records["seq_length"]}
                              if records else MISSING)
    if records and records.get("budget"):
        sections["Token budget"] = render_table(records["budget"], records["seq_length"], records.get("max_new_tokens"))

    params = _load_json(layout.params)
    if layout.loss_log.is_file():
        training = training_summary(run_dir)
        if params:
            training.update({"trainable parameters": params["trainable"], "base parameters": params["base"],
                             "trainable / base": params["ratio"]})
        plot_loss(layout.loss_log, run_dir / "loss.png", title=f"Training loss ({run_dir.name})")
        write_loss_csv(layout.loss_log, run_dir / "loss.csv")
        sections["Training"] = training
        sections["Loss curve"] = "![loss](loss.png)"
    else:
        sections["Training"] = MISSING

    before = _load_json(layout.eval_dir("math", "base") / "metrics.json")
    after = _load_json(layout.eval_dir("math", "lora") / "metrics.json")
    logic = [_load_json(layout.eval_dir("logic", model) / "metrics.json") for model in ("base", "lora")]
    if before:
        text = accuracy_table(after, before) if after else accuracy_table(before)
        for label, metrics in (("before", before), ("after", after)):
            if metrics and "tool_assisted" in metrics:
                text += f"\nPoT expressions that could not be used ({label}):\n\n" + format_failures(metrics["tool_assisted"])
        if "tool_assisted" in before and before["source"].get("fewshot"):
            text += (f"\nBefore: the base model prompted with the worked examples of `{before['source']['fewshot']}` "
                     f"and no chat template (untrained, it writes no `算式：` otherwise); after: the run's "
                     f"template, no examples, as it was trained.\n")
        text += (f"\nRule: `{before['rule']}` (eval/compare.py): the final number of the generation "
                 f"(or its `\\boxed{{}}`) against the reference answer. Generation: greedy, transformers "
                 f"(PyTorch, KV cache) on weights converted from the MindFormers checkpoint.\n")
        if after and params:
            text += (f"\nContest score with this run's counts, (1 - trainable/base) x 0.3 + accuracy x 0.7: "
                     f"before {contest_score(before['overall']['accuracy'], 0, params['base']):.4f}, "
                     f"after {contest_score(after['overall']['accuracy'], params['trainable'], params['base']):.4f}\n")
        sections["Math accuracy (held-out items)"] = f"Items: `{before.get('items_file', '?')}`\n\n" + text
        sections.update(rule_sections(layout))
    elif not any(logic):  # a logic-only run has no math items to grade
        sections["Math accuracy (held-out items)"] = MISSING
    if any(logic):
        sections["Logic accuracy (held-out sub-questions, eval.logic)"] = logic_run_section(*logic)

    artefacts = [p.name for p in sorted(run_dir.iterdir()) if p.is_file() and p.name != "report.md"]
    subdirs = [f"{p.relative_to(run_dir)}/" for p in sorted([*run_dir.glob("eval/*"), layout.data_dir,
                                                              layout.output_dir]) if p.is_dir()]
    sections["Artefacts"] = artefacts + subdirs
    return sections


def main(argv=None) -> int:
    parser = Parser(prog="python -m eval.run_report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", required=True, help="run directory (logs/<run-id>)")
    parser.add_argument("--wall_s", type=float, default=None, help="whole-job wall time in seconds, for the report")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"--run_dir {run_dir}: no such directory")
    path = write_report(run_dir, build_sections(run_dir, args.wall_s), title=f"Fine-tuning run {run_dir.name}")
    print(Path(path).read_text(encoding="utf-8").split("## Math accuracy")[-1].split("## Artefacts")[0])
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
