"""Tool-assisted (program-of-thought) grading: execute the expression a generation ends with.

The expression is the text after the generation's last ``算式：`` (:mod:`preprocess.answer.pot`, which
also defines the language and the safe evaluator). Its executed value is graded against the
reference with the same rule as tool-free answers. Tool-assisted accuracy is reported as its own
column beside the tool-free accuracy of the same generations, never instead of it — ToRA (Gou et
al. 2023) and Qwen2.5-Math report tool-integrated reasoning separately in the same way.

Each generation gets a ``pot_status`` (:func:`preprocess.answer.pot.execute`): ``ok`` (evaluated), ``no_expression`` (no ``算式：`` line),
``parse_failed`` (outside the language, unsafe or oversized) or ``eval_failed`` (division by zero,
an exponent out of bounds, ...); the failures are counted overall and per category.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from eval.compare import DEFAULT_RULE
from eval.math_accuracy import UNCATEGORIZED, score
from preprocess.answer.pot import STATUSES, execute

def score_pot(items: Sequence[Mapping], predictions: Sequence[Mapping], rule: str = DEFAULT_RULE) -> dict:
    """Grade the executed expressions of ``predictions`` (arguments as :func:`eval.math_accuracy.score`).

    Returns:
        :func:`eval.math_accuracy.score`'s dict for the executed values (``extracted`` is the
        value) plus ``failures``: ``{status: count}`` over the failure statuses and
        ``failures_by_category``: ``{category: {status: count}}``; each item record gains
        ``pot_status`` and ``pot_detail`` (items without a prediction count as ``no_expression``).
    """
    runs: dict[str, tuple[str | None, str, str]] = {}

    def answer_of(generation):
        if generation not in runs:
            runs[generation] = execute(generation)
        return runs[generation][0]

    result = score(items, predictions, rule=rule, answer_of=answer_of)
    failures = {status: 0 for status in STATUSES[1:]}
    by_category: dict[str, dict[str, int]] = {}
    for record in result["items"]:
        _, status, detail = runs.get(record["generation"], (None, "no_expression", ""))
        record.update(pot_status=status, pot_detail=detail)
        counts = by_category.setdefault(record.get("category") or UNCATEGORIZED,
                                        {s: 0 for s in STATUSES[1:]})
        if status != "ok":
            failures[status] += 1
            counts[status] += 1
    return {**result, "failures": failures, "failures_by_category": by_category}


def format_failures(tool: Mapping) -> str:
    """Markdown table ``category | n | no expression | parse failed | eval failed`` of a
    :func:`score_pot` result, sorted by category, with a bold total row."""
    lines = ["| category | n | no expression | parse failed | eval failed |", "|---|---:|---:|---:|---:|"]
    cats = tool["failures_by_category"]
    for name in sorted(cats):
        c = cats[name]
        lines.append(f"| {name} | {tool['categories'][name]['total']} | {c['no_expression']} | "
                     f"{c['parse_failed']} | {c['eval_failed']} |")
    f = tool["failures"]
    lines.append(f"| **total** | {tool['overall']['total']} | {f['no_expression']} | {f['parse_failed']} | "
                 f"{f['eval_failed']} |")
    return "\n".join(lines) + "\n"
