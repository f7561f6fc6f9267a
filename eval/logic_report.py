"""Markdown of ``eval.logic`` metrics: its own table and the run report's logic section.

Reads the ``metrics.json`` dicts :func:`eval.logic.run` writes; accuracy in percent with counts,
beside the chance baseline (:func:`eval.logic_vote.chance`: guessing uniformly among the options).
"""
from __future__ import annotations

from pathlib import PurePath

from eval.logic_vote import second_round_size


def _name(adapter: str) -> str:
    """An adapter path shortened to its last two parts (``bag_01/lora.ckpt``); ``base`` as is."""
    parts = PurePath(adapter).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else adapter


def _row(name: str, acc: dict) -> str:
    q, p = acc["questions"], acc["problems"]
    return (f"| {name} | {100 * q['accuracy']:.2f}% ({q['correct']}/{q['total']}) | "
            f"{100 * p['accuracy']:.2f}% ({p['all_correct']}/{p['total']}) | {100 * p['mean_accuracy']:.2f}% |")


def _chance_row(metrics: dict) -> str:
    c = metrics["chance"]
    return (f"| chance (1/options) | {100 * c['questions']:.2f}% | {100 * c['problems']:.2f}% | "
            f"{100 * c['mean_accuracy']:.2f}% |")


_HEADER = ["| model | sub-question accuracy | problem accuracy (all right) | mean per-problem |",
           "|---|---:|---:|---:|"]


def accuracy_table(metrics: dict) -> str:
    """One row per adapter, the vote over all of them, and chance; a note when nothing is labelled."""
    if "ensemble" not in metrics:
        return "(no reference answers: see submission.jsonl)\n"
    lines = list(_HEADER)
    lines += [_row(_name(a), acc) for a, acc in metrics["per_adapter"].items()]
    lines.append(_row("**vote (all)**", metrics["ensemble"]))
    if "chance" in metrics:
        lines.append(_chance_row(metrics))
    return "\n".join(lines) + "\n"


def votes_text(metrics: dict) -> str:
    """How the letters were voted: samples per adapter, adapters, second round, ties, no letter."""
    src = metrics.get("source", {})
    if "num_samples" in src:
        second = second_round_size(src["num_samples"], src.get("second_round"))
        drawn = "greedy" if src["num_samples"] == 1 else f"temperature {src.get('temperature')}"
        how = (f"{src['num_samples']} sample(s) per question and adapter ({drawn}), "
               f"{len(metrics['adapters'])} adapter(s) pooled, {second} more for questions without a majority")
    else:
        how = f"votes read from {', '.join(src.get('predictions', []))}"
    return (f"{how}; second round for {metrics['second_round_questions']} sub-questions, "
            f"{metrics['no_majority_after_vote']} still tied (first-voted letter taken), "
            f"{metrics['no_letter']} without any letter")


def run_section(before: dict | None, after: dict | None) -> str:
    """The run report's logic section: accuracy before and after fine-tuning (each adapter and the
    vote after), chance, and how votes were taken. Either side may be missing (``None``)."""
    lines = list(_HEADER)
    for label, m in (("before fine-tuning", before), ("after fine-tuning", after)):
        if m is None or "ensemble" not in m:
            lines.append(f"| {label} | (missing) | | |")
            continue
        if len(m["per_adapter"]) > 1:
            lines += [_row(f"{label}: {_name(a)}", acc) for a, acc in m["per_adapter"].items()]
            label = f"{label}: **vote of {len(m['per_adapter'])} adapters**"
        lines.append(_row(label, m["ensemble"]))
    known = next((m for m in (before, after) if m and "chance" in m), None)
    if known:
        lines.append(_chance_row(known))
        head = (f"{known['questions']} held-out sub-questions of {known['problems']} problems "
                f"({known['items_file']}); a problem counts as right when all its held-out sub-questions are.\n\n")
    else:
        head = ""
    notes = [f"- {label}: {votes_text(m)}" for label, m in (("before", before), ("after", after)) if m]
    return head + "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"
