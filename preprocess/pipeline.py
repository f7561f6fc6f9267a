"""End-to-end preprocessing: read -> validate -> dedup -> classify -> verify + CoT -> split -> write.

Outputs in ``output_dir`` (each replaced atomically):
    items.jsonl         one record per kept item:
                        {id, source, category, problem, solution, answer, cot, verified}
    eval.jsonl          the held-out items, same fields
    conversations.json  fastchat records of the verified training items, the input of
                        MindFormers r1.1 ``research/llama3/llama_preprocess.py`` (qa mode):
                        [{"id", "conversations": [{"from": "human", "value": problem},
                                                  {"from": "gpt", "value": cot}]}]
    rejected.jsonl      bad input lines {kind: "invalid_line", file, line, reason} and
                        verification failures {kind: "verify_failed", id, file, line,
                        category, reason}
    report.json         counts (see :func:`run`)
    report.md           the same counts as markdown tables

Counting invariant: every non-blank input line is read once and ends up kept, dropped as a
duplicate, or rejected, so ``read = kept + duplicates + rejected``. Verification failures
stay among the kept items (flagged ``verified: false``); they are excluded from
``conversations.json`` and never held out, because an item whose reference answer could not
be confirmed cannot score a model.
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from .atomic import write_json_atomic, write_jsonl_atomic, write_text_atomic
from .classify import CATEGORIES, classify
from .cot import synthesize
from .dedup import dedup
from .readers import read_contest_jsonl
from .split import split_holdout

ITEM_FIELDS = ("id", "source", "category", "problem", "solution", "answer", "cot", "verified")


def _id_prefixes(inputs: list[str]) -> dict[str, str]:
    """Map each input path to an id prefix: its file stem, made unique across inputs."""
    stems = Counter(Path(p).stem for p in inputs)
    prefixes: dict[str, str] = {}
    for i, p in enumerate(inputs):
        stem = Path(p).stem
        prefixes.setdefault(p, stem if stems[stem] == 1 else f"{stem}~{i}")
    return prefixes


def run(
    inputs: list[str],
    output_dir: str | os.PathLike,
    eval_size: int = 0,
    seed: int = 0,
    *,
    progress: bool = True,
) -> dict:
    """Run the whole pipeline and write its outputs into ``output_dir`` (created if needed).

    Args:
        inputs: JSONL files (contest ``{"problem","solution"}`` or GSM8K ``{"question","answer"}``).
        output_dir: directory for the six output files.
        eval_size: number of verified items to hold out, stratified by category.
        seed: seed of the hold-out draw.
        progress: show a tqdm bar (on stderr) over the items being verified.

    Returns:
        The report dict written to report.json: ``read, rejected, duplicates, kept,
        verified, verify_failed, train, eval, conversations`` (ints), ``invariant`` (str),
        ``per_category`` ({category: {kept, verified, train, eval}}, categories in
        ``CATEGORIES`` order, only those present), plus ``inputs``, ``eval_size``, ``seed``.

    Raises:
        FileNotFoundError: an input file does not exist.
        ValueError: ``eval_size`` is negative or exceeds the number of verified items.
    """
    inputs = [str(p) for p in inputs]
    if eval_size < 0:
        raise ValueError(f"eval_size must be >= 0, got {eval_size}")
    out = Path(output_dir)
    good, bad_lines = read_contest_jsonl(inputs)
    kept_records, n_duplicates = dedup(good)
    prefixes = _id_prefixes(inputs)

    items: list[dict] = []
    failures: list[dict] = []
    for rec in tqdm(kept_records, desc="verify", unit="item", disable=not progress, file=sys.stderr):
        category = classify(rec["problem"], rec["solution"])
        result = synthesize(rec["problem"], rec["solution"], category)
        item = {
            "id": f"{prefixes[rec['file']]}-{rec['line']}",
            "source": rec["file"],
            "category": category,
            "problem": rec["problem"],
            "solution": rec["solution"],
            "answer": result.answer,
            "cot": result.cot,
            "verified": result.verified,
        }
        items.append(item)
        if not result.verified:
            failures.append(
                {"kind": "verify_failed", "id": item["id"], "file": rec["file"], "line": rec["line"],
                 "category": category, "reason": result.reason}
            )

    verified_items = [it for it in items if it["verified"]]
    if eval_size > len(verified_items):
        raise ValueError(
            f"eval_size {eval_size} exceeds the {len(verified_items)} verified items available"
        )
    _, held = split_holdout(verified_items, eval_size, seed)
    held_ids = {it["id"] for it in held}
    train = [it for it in items if it["id"] not in held_ids]
    conversations = [
        {"id": it["id"], "conversations": [{"from": "human", "value": it["problem"]},
                                           {"from": "gpt", "value": it["cot"]}]}
        for it in train
        if it["verified"]
    ]

    report = _report(inputs, eval_size, seed, good, bad_lines, n_duplicates, items, train, held,
                     conversations)
    rejected = [{"kind": "invalid_line", **b} for b in bad_lines] + failures
    write_jsonl_atomic(out / "items.jsonl", items)
    write_jsonl_atomic(out / "eval.jsonl", held)
    write_json_atomic(out / "conversations.json", conversations)
    write_jsonl_atomic(out / "rejected.jsonl", rejected)
    write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "report.md", render_markdown(report))
    return report


def _report(inputs, eval_size, seed, good, bad_lines, n_duplicates, items, train, held,
            conversations) -> dict:
    read = len(good) + len(bad_lines)
    kept, rejected = len(items), len(bad_lines)
    if read != kept + n_duplicates + rejected:
        # Cannot happen unless a stage loses or invents records; refuse to write a wrong report.
        raise RuntimeError(f"count invariant broken: read {read} != {kept} + {n_duplicates} + {rejected}")
    per: dict[str, dict[str, int]] = {}
    for name, group in (("kept", items), ("train", train), ("eval", held)):
        for it in group:
            per.setdefault(it["category"], {"kept": 0, "verified": 0, "train": 0, "eval": 0})[name] += 1
    for it in items:
        per[it["category"]]["verified"] += it["verified"]
    verified = sum(it["verified"] for it in items)
    return {
        "inputs": inputs,
        "eval_size": eval_size,
        "seed": seed,
        "read": read,
        "rejected": rejected,
        "duplicates": n_duplicates,
        "kept": kept,
        "verified": verified,
        "verify_failed": kept - verified,
        "train": len(train),
        "eval": len(held),
        "conversations": len(conversations),
        "invariant": f"read = kept + duplicates + rejected: {read} = {kept} + {n_duplicates} + {rejected}",
        "per_category": {c: per[c] for c in CATEGORIES if c in per},
    }


def render_markdown(report: dict) -> str:
    """Render ``report`` (as returned by :func:`run`) as a markdown summary with a per-category table."""
    lines = [
        "# Preprocessing report",
        "",
        f"Inputs: {', '.join(f'`{p}`' for p in report['inputs'])}",
        "",
        "| stage | count |",
        "|---|---:|",
    ]
    for key in ("read", "rejected", "duplicates", "kept", "verified", "verify_failed", "train", "eval",
                "conversations"):
        lines.append(f"| {key} | {report[key]} |")
    lines += [
        "",
        f"Invariant holds: {report['invariant']}",
        "",
        "| category | kept | verified | train | eval |",
        "|---|---:|---:|---:|---:|",
    ]
    for cat, c in report["per_category"].items():
        lines.append(f"| {cat} | {c['kept']} | {c['verified']} | {c['train']} | {c['eval']} |")
    lines.append(
        f"| **total** | {report['kept']} | {report['verified']} | {report['train']} | {report['eval']} |"
    )
    return "\n".join(lines) + "\n"
