"""Score generations against reference answers; the contest score; a before/after Markdown table.

Accuracy = correct / total and contest score = (1 - trainable / 8,030M) * 0.3 + accuracy * 0.7 are the
2024 Ascend contest (topic 2) rules quoted in ``shared/data/README.md``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from eval.compare import DEFAULT_RULE, is_correct, parse_rule
from preprocess.answer.extract import extract_answer

LLAMA3_8B_PARAMS = 8.03e9  # the contest's denominator, "8,030M"
UNCATEGORIZED = "uncategorized"


def _bucket(total: int, correct: int) -> dict:
    return {"total": total, "correct": correct, "accuracy": correct / total if total else 0.0}


def score(items: Sequence[Mapping], predictions: Sequence[Mapping],
          rule: str = DEFAULT_RULE,
          answer_of: Callable[[str | None], str | None] = extract_answer) -> dict:
    """Grade ``predictions`` against ``items``.

    Args:
        items: dicts with ``id`` and ``answer`` (reference string); ``category`` is optional
            (missing → ``"uncategorized"``); other keys are copied to the per-item records.
        predictions: dicts ``{"id", "generation"}``. Ids are matched as strings, so ``3`` and
            ``"3"`` are the same item. Predictions for ids not in ``items`` are ignored (a full
            prediction file may be scored against a ``--limit`` subset); an item without a
            prediction counts as wrong and is reported under ``missing``.
        rule: passed to :func:`eval.compare.is_correct` with the item's category.
        answer_of: turns a generation into the answer string graded (``extracted``): the final
            number by default; PoT mode passes the value of the executed expression.

    Returns:
        ``{"rule", "overall": {total, correct, accuracy}, "categories": {name: {...}},
        "missing": int, "items": [item + generation, extracted, correct]}``; categories are in
        order of first appearance, accuracy is 0.0 for an empty set.

    Raises:
        KeyError: an item without ``id`` or ``answer``, a prediction without ``id``/``generation``.
        ValueError: duplicate ids in ``items`` or in ``predictions``; a bad ``rule``.
    """
    parse_rule(rule)  # fail before grading anything
    by_id: dict[str, Mapping] = {}
    for pred in predictions:
        key = str(pred["id"])
        if key in by_id:
            raise ValueError(f"duplicate prediction id {key!r}")
        by_id[key] = pred

    seen: set[str] = set()
    counts: dict[str, list[int]] = {}
    records = []
    missing = 0
    for item in items:
        key = str(item["id"])
        if key in seen:
            raise ValueError(f"duplicate item id {key!r}")
        seen.add(key)
        ref = str(item["answer"])
        pred = by_id.get(key)
        if pred is None:
            missing += 1
            generation, extracted, ok = None, None, False
        else:
            generation = pred["generation"]
            extracted = answer_of(generation)
            ok = is_correct(extracted, ref, rule=rule, category=item.get("category"))
        category = item.get("category") or UNCATEGORIZED
        bucket = counts.setdefault(category, [0, 0])
        bucket[0] += 1
        bucket[1] += ok
        records.append({**item, "generation": generation, "extracted": extracted, "correct": ok})

    total = sum(b[0] for b in counts.values())
    correct = sum(b[1] for b in counts.values())
    return {
        "rule": rule,
        "overall": _bucket(total, correct),
        "categories": {name: _bucket(*b) for name, b in counts.items()},
        "missing": missing,
        "items": records,
    }


def contest_score(accuracy: float, trainable: int, total: float = LLAMA3_8B_PARAMS) -> float:
    """Return ``(1 - trainable / total) * 0.3 + accuracy * 0.7``.

    Args:
        accuracy: fraction correct in [0, 1] (not a percentage).
        trainable: number of trainable (LoRA) parameters.
        total: parameter count of the base model; the contest uses 8,030M for Llama3-8B.

    Raises:
        ValueError: accuracy outside [0, 1], negative ``trainable``, or ``total`` <= 0.
    """
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be a fraction in [0, 1], got {accuracy!r}")
    if trainable < 0 or total <= 0:
        raise ValueError(f"need trainable >= 0 and total > 0, got {trainable!r}, {total!r}")
    return (1.0 - trainable / total) * 0.3 + accuracy * 0.7


def _cell(bucket: Mapping | None) -> str:
    if bucket is None:
        return "–"
    return f"{bucket['accuracy'] * 100:.2f}% ({bucket['correct']})"


def _n_cell(buckets: Sequence[Mapping | None]) -> str:
    totals = list(dict.fromkeys(b["total"] for b in buckets if b is not None))
    return " / ".join(map(str, totals))  # different item sets: show each rather than hide it


def format_columns(columns: Mapping[str, Mapping]) -> str:
    """Render score dicts (as :func:`score` returns them), one column each, as a Markdown table.

    ``columns`` maps a column label (``"tool-free"``, ``"accuracy before"``) to a score dict. Rows
    are the categories sorted by name (union of all columns, ``–`` where one lacks it) and a bold
    ``overall`` row; a cell reads ``45.00% (9)``: accuracy and the number correct. ``n`` shows
    ``a / b`` if the columns graded different numbers of items.
    """
    runs = list(columns.values())
    names = sorted(set().union(*(r["categories"] for r in runs)))
    rows = [(name, [r["categories"].get(name) for r in runs]) for name in names]
    rows.append(("**overall**", [r["overall"] for r in runs]))
    lines = ["| category | n | " + " | ".join(columns) + " |", "|---|---:|" + "---:|" * len(runs)]
    lines += [f"| {name} | {_n_cell(cells)} | " + " | ".join(map(_cell, cells)) + " |" for name, cells in rows]
    return "\n".join(lines) + "\n"


def format_table(before: Mapping, after: Mapping | None = None) -> str:
    """:func:`format_columns` with one ``accuracy`` column, or ``accuracy before | accuracy after``."""
    if after is None:
        return format_columns({"accuracy": before})
    return format_columns({"accuracy before": before, "accuracy after": after})


# The rules shown side by side in a run report: the contest's first, then the two tolerant ones
# (eval/compare.py); fewer_decimals is what the teams' own scorers did, never the official rule.
SIDE_RULES = (("exact", "exact"), ("printed", "printed"), ("fewer_decimals", "fewer_decimals (not the official rule)"))


def rule_table(before: Sequence[Mapping] | None, after: Sequence[Mapping]) -> str:
    """Tool-free accuracy per category under each of :data:`SIDE_RULES`, before and after.

    Args:
        before, after: prediction records as ``eval.math`` writes them to ``predictions.jsonl``
            (item fields with ``generation``); ``before`` may be None (no baseline). Each is graded
            again from its generation (:func:`eval.extract.extract_answer`, the tool-free answer).

    Returns:
        A Markdown table (:func:`format_columns`): ``exact before | exact after | printed ... |
        fewer_decimals (not the official rule) ...``, rows per category and ``overall``.
    """
    columns = {}
    for rule, label in SIDE_RULES:
        for when, records in (("before", before), ("after", after)):
            if records is not None:
                columns[f"{label} {when}"] = score(records, records, rule=rule)
    return format_columns(columns)


def wrong_examples(records: Sequence[Mapping], per_category: int = 2, width: int = 160) -> str:
    """A Markdown table of the first ``per_category`` wrong tool-free predictions of each category.

    Args:
        records: ``predictions.jsonl`` records (``category``, ``problem``, ``answer``, ``generation``,
            ``extracted``, ``correct``), graded as ``eval.math`` graded them (its ``--rule``).
        width: characters kept of the problem and of the generation's end (where its answer is).

    Returns:
        ``| category | problem | reference | extracted | end of the generation |`` rows, categories
        sorted by name; "(none wrong)" when every prediction is right.
    """
    def cell(text, tail=False):
        text = " ".join(str(text or "").split()).replace("|", "\\|")
        if len(text) <= width:
            return text
        return "…" + text[-width:] if tail else text[:width] + "…"

    picked: dict[str, list[Mapping]] = {}
    for r in records:
        if not r.get("correct"):
            rows = picked.setdefault(r.get("category") or UNCATEGORIZED, [])
            if len(rows) < per_category:
                rows.append(r)
    if not picked:
        return "(none wrong)\n"
    lines = ["| category | problem | reference | extracted | end of the generation |", "|---|---|---|---|---|"]
    for name in sorted(picked):
        for r in picked[name]:
            lines.append(f"| {name} | {cell(r.get('problem'))} | {cell(r.get('answer'))} | "
                         f"{cell(r.get('extracted'))} | {cell(r.get('generation'), tail=True)} |")
    return "\n".join(lines) + "\n"


def accuracy_table(metrics: Mapping, baseline: Mapping | None = None) -> str:
    """The report table of an ``eval.math`` run's metrics (before/after with a ``baseline``).

    A PoT run (metrics with ``tool_assisted``, :mod:`eval.pot`) gets a ``tool-assisted (PoT)``
    column beside each ``tool-free`` one, never instead of it; otherwise :func:`format_table`.
    """
    if "tool_assisted" not in metrics:
        return format_table(baseline, metrics) if baseline else format_table(metrics)
    columns = {}
    for label, run in (("before", baseline), ("after", metrics)) if baseline else (("", metrics),):
        suffix = f" {label}" if label else ""
        columns[f"tool-free{suffix}"] = run
        if "tool_assisted" in run:
            columns[f"tool-assisted (PoT){suffix}"] = run["tool_assisted"]
    return format_columns(columns)
