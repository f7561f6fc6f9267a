"""Command line: Tianchi logical reasoning with self-consistency voting (``python -m eval.logic --help``).

For every sub-question of a Tianchi JSONL file, or of the logic items of a ``preprocess``
``eval.jsonl`` (other categories are skipped and counted: ``eval.math`` grades them):
``--num_samples`` generations per adapter (greedy when 1, else sampled with
``--temperature``/``--top_p``, sample k seeded ``--seed + k``; default 3 on CPU, 5 on an
accelerator), the
answer letter of each (:func:`eval.logic_vote.extract_letter`), a vote pooled over all adapters
(an ensemble when ``--lora_checkpoint`` lists several), and ``--second_round`` more samples for
questions left without a majority (:mod:`eval.logic_vote` has the rules). Each prompt is the
sub-question's user message as ``preprocess`` writes training records (``--style``, from
:func:`preprocess.logic.user_message`) inside the training chat template (``--template``), so an
adapter is asked the way it was taught; ``--style baseline`` asks with the Tianchi baseline instruction.

Writes to ``--output_dir`` (atomically): ``samples.jsonl`` (every generation with its adapter,
round, seed and letter; accepted back by ``--predictions``), ``predictions.jsonl`` (one row per
sub-question: votes, prediction, reference, correct), ``submission.jsonl`` (Tianchi format:
``{"id", "questions": [{"answer"}]}`` per problem, in file order; Tianchi input only),
``metrics.json`` (accuracy per sub-question and per problem, per adapter and for the ensemble, with
the chance baseline, when the file has answers) and ``report.md``; :mod:`eval.logic_report` turns
two of these (before/after fine-tuning) into the run report's logic section.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

from eval.files import read_jsonl
from eval.logic_report import accuracy_table
from eval.logic_vote import (PROMPT_STYLES, accuracy, chance, extract_letter, flatten, flatten_items, render_prompt,
                             second_round_size, split_rows, submission, vote)
from eval.model_args import (add_model_args, add_sampling_args, add_template_arg, make_generator, model_source,
                             positive_int, prompt_template)
from eval.plots import plot_bars
from eval.sampling import Sampling
from preprocess.atomic import write_json_atomic, write_jsonl_atomic, write_text_atomic
from preprocess.cli import Parser, UserError, reported_as, run_main

DEFAULT_VOTES = {"cpu": 3, "accelerator": 5}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m eval.logic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", required=True,
                   help="Tianchi JSONL: {id, problem, questions: [{question, options, answer?}]} per line, or "
                        "preprocess items (eval.jsonl; logic items are graded, others skipped)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--predictions", nargs="+",
                     help='samples JSONL file(s) of {"key","generation"[,"adapter","round"]} to vote on '
                          "(no model is loaded; several files are pooled like an ensemble)")
    add_model_args(p, src, max_new_tokens=512, several_adapters=True)
    add_sampling_args(p)
    add_template_arg(p)
    p.add_argument("--style", choices=PROMPT_STYLES, default="plain",
                   help="user message of a sub-question: plain/thinking as preprocess writes training records "
                        "(its logic_style), baseline = the Tianchi baseline instruction (default: %(default)s)")
    p.add_argument("--num_samples", type=positive_int, default=None,
                   help="generations per question and adapter in round 1; 1 = greedy (default: "
                        f"{DEFAULT_VOTES['cpu']} when generating on CPU, {DEFAULT_VOTES['accelerator']} on an "
                        "accelerator)")
    p.add_argument("--second_round", type=int, default=None,
                   help="sampled generations per adapter for questions without a majority; 0 = off "
                        "(default: --num_samples, and 0 when --num_samples is 1: greedy stays greedy)")
    p.add_argument("--fill", default="A",
                   help="submission letter for a question with no answer letter at all (default: %(default)s)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="only the first N lines: problems, or items of an eval.jsonl")
    p.add_argument("--output_dir", default="output/eval/logic",
                   help="where outputs are written (default: %(default)s)")
    return p


def default_votes(args: argparse.Namespace) -> int:
    """Round-1 samples when ``--num_samples`` is not given: few on CPU, where every sample is slow.

    The device is the YAML's ``context.device_target`` for ``--backend mindformers``, else
    ``--device`` (default: cuda when available).
    """
    if args.backend == "mindformers":
        import yaml

        with open(args.config, encoding="utf-8") as fh:
            target = str((yaml.safe_load(fh).get("context") or {}).get("device_target", "CPU"))
    else:
        import torch

        target = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return DEFAULT_VOTES["cpu" if target.lower().startswith("cpu") else "accelerator"]


def _generate_samples(args, questions: list[dict]) -> list[dict]:
    """Round 1 and round 2 generations with every adapter; returns sample rows."""
    adapters = args.lora_checkpoint or [None]
    template = prompt_template(args)
    generators = []
    for adapter in adapters:
        one = copy.copy(args)
        one.lora_checkpoint = adapter
        generators.append((adapter or "base", make_generator(one)))
    samples: list[dict] = []

    def draw(qs: list[dict], n: int, round_: int, first_seed: int, greedy_ok: bool):
        prompts = [render_prompt(q, args.style, template) for q in qs]
        for name, gen in generators:
            for k in range(n):
                sampling = None if (greedy_ok and n == 1) else Sampling(args.temperature, args.top_p,
                                                                       first_seed + k)
                texts = gen(prompts, sampling)
                samples.extend({"key": q["key"], "adapter": name, "round": round_,
                                "seed": None if sampling is None else sampling.seed, "generation": t}
                               for q, t in zip(qs, texts))

    draw(questions, args.num_samples, 1, args.seed, greedy_ok=True)
    second = second_round_size(args.num_samples, args.second_round)
    letters = _letters(questions, samples)
    undecided = [q for q in questions if not vote(letters.get(q["key"], []))[1]]
    if second > 0 and undecided:
        draw(undecided, second, 2, args.seed + args.num_samples, greedy_ok=False)
    return samples


def _letters(questions: list[dict], samples: list[dict]) -> dict[str, list[str | None]]:
    """Answer letter of every sample (also stored in it as ``letter``), grouped by question key."""
    n_options = {q["key"]: len(q["options"]) for q in questions}
    grouped: dict[str, list[str | None]] = {}
    for s in samples:
        s["letter"] = extract_letter(s["generation"], n_options[s["key"]])
        grouped.setdefault(s["key"], []).append(s["letter"])
    return grouped


def run(args: argparse.Namespace) -> dict:
    """Generate (model mode) or read samples, vote, score, write outputs; return the metrics dict."""
    started = time.time()
    problems, items, skipped = split_rows(read_jsonl(args.items, limit=args.limit))
    questions = flatten(problems, where=f"{args.items}: ") + flatten_items(items, where=f"{args.items}: ")
    if not questions:
        raise ValueError(f"{args.items}: no logic questions (skipped {skipped} items of other categories)")
    Sampling(args.temperature, args.top_p, args.seed)  # bad settings fail before a model loads
    if args.predictions:
        keys = {q["key"] for q in questions}
        samples = [s for f in args.predictions for s in read_jsonl(f) if s["key"] in keys]
        source = {"predictions": list(args.predictions)}
    else:
        if args.num_samples is None:
            args.num_samples = default_votes(args)
        samples = _generate_samples(args, questions)
        source = {**model_source(args), "num_samples": args.num_samples, "second_round": args.second_round,
                  "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed,
                  "template": args.template, "style": args.style}
    _letters(questions, samples)
    by_key: dict[str, list[dict]] = {}
    for s in samples:
        by_key.setdefault(s["key"], []).append(s)
    adapters = list(dict.fromkeys(s.get("adapter", "base") for s in samples))
    records = []
    for q in questions:
        own = by_key.get(q["key"], [])
        winner, majority, counts = vote([s["letter"] for s in own])
        row = {k: q[k] for k in ("key", "problem_id", "index", "answer")}
        row.update(votes=counts, majority=majority, second_round=any(s.get("round") == 2 for s in own),
                   prediction=winner, samples=len(own),
                   per_adapter={a: vote([s["letter"] for s in own if s.get("adapter", "base") == a])[0]
                                for a in adapters})
        if q["answer"] is not None:
            row["correct"] = winner == q["answer"]
        records.append(row)

    out = Path(args.output_dir)
    labelled = [r for r in records if r["answer"] is not None]
    metrics: dict = {"items_file": str(args.items), "problems": len({q["problem_id"] for q in questions}),
                     "questions": len(questions), "skipped_other_categories": skipped,
                     "samples": len(samples), "adapters": adapters, "source": source,
                     "no_majority_after_vote": sum(not r["majority"] for r in records),
                     "second_round_questions": sum(r["second_round"] for r in records),
                     "no_letter": sum(r["prediction"] is None for r in records)}
    if labelled:
        metrics["ensemble"] = accuracy(labelled)
        metrics["chance"] = chance([q for q in questions if q["answer"] is not None])
        metrics["per_adapter"] = {a: accuracy([{**r, "prediction": r["per_adapter"][a]} for r in labelled])
                                  for a in adapters}
    rows, filled = submission(problems, {r["key"]: r["prediction"] for r in records}, fill=args.fill)
    metrics["submission_filled"] = len(filled)
    metrics["submission_file"] = str(write_jsonl_atomic(out / "submission.jsonl", rows)) if problems else None
    metrics["samples_file"] = str(write_jsonl_atomic(out / "samples.jsonl", samples))
    metrics["predictions_file"] = str(write_jsonl_atomic(out / "predictions.jsonl", records))
    if labelled:
        series = {"sub-question": {}, "problem (all right)": {}}
        for name, acc in [*metrics["per_adapter"].items(), ("ensemble", metrics["ensemble"])]:
            series["sub-question"][name] = 100 * acc["questions"]["accuracy"]
            series["problem (all right)"][name] = 100 * acc["problems"]["accuracy"]
        metrics["plot_file"] = plot_bars(series, out / "accuracy.png", title="Logic accuracy",
                                         ylabel="accuracy (%)", ylim=(0, 100))
    metrics["wall_time_s"] = round(time.time() - started, 3)
    metrics["report_file"] = str(write_text_atomic(out / "report.md", _report(metrics)))
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def _report(metrics: dict) -> str:
    plot = "\n![accuracy](accuracy.png)\n" if "plot_file" in metrics else ""
    return (f"# Logic evaluation: {metrics['items_file']}\n\n{metrics['problems']} problems, "
            f"{metrics['questions']} sub-questions, {metrics['samples']} generations, adapters: "
            f"{', '.join(metrics['adapters']) or '-'}.\n\n{accuracy_table(metrics)}\n"
            f"- second round for {metrics['second_round_questions']} sub-questions; "
            f"{metrics['no_majority_after_vote']} still tied (first-voted letter taken); "
            f"{metrics['no_letter']} without any letter (submission filled: {metrics['submission_filled']})\n"
            f"{plot}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with reported_as(UserError, OSError, ValueError, KeyError):
        metrics = run(args)
    print(accuracy_table(metrics), end="")
    print(f"submission: {metrics['submission_file']}  report: {metrics['report_file']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
