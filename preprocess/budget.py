"""Token budgets: how long prompts and targets are per category, and which samples do not fit.

A training record holds ``seq_length + 1`` tokens (MindFormers shifts labels by one inside the
model), so a sample whose BOS + prompt + target + turn end is longer is truncated: its last target
tokens, usually the final answer, are never trained on. At evaluation the model may generate
``max_new_tokens`` tokens (``eval.math --max_new_tokens``, 192 in ``scripts/finetune.sh``), so a
target longer than that cannot be reproduced in full however well it is learned. This module
measures both per category; ``research.llama3.records.mindrecord`` reports them, warns, and on request drops
such samples (with a count) instead of truncating them.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

IGNORE_INDEX = -100


def split_lengths(labels: Sequence[int]) -> tuple[int, int]:
    """``(prompt, target)`` token counts of one encoded sample: masked (BOS, prompts) vs trained
    (answers and turn ends) positions of its ``labels``."""
    prompt = sum(1 for v in labels if v == IGNORE_INDEX)
    return prompt, len(labels) - prompt


def over_budget(prompt: int, target: int, seq_length: int, max_new_tokens: int | None) -> str | None:
    """Why a sample does not fit, or None: longer than ``seq_length + 1`` tokens, or a target longer
    than ``max_new_tokens`` (None: no generation budget to check)."""
    reasons = []
    if prompt + target > seq_length + 1:
        reasons.append(f"{prompt + target} tokens > seq_length+1={seq_length + 1}")
    if max_new_tokens is not None and target > max_new_tokens:
        reasons.append(f"target {target} tokens > max_new_tokens={max_new_tokens}")
    return "; ".join(reasons) or None


def _quantile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank quantile (the smallest value with at least ``q`` of the values at or below it)."""
    rank = max(1, -(-len(sorted_values) * q // 1))
    return sorted_values[int(rank) - 1]


def summarize(samples: Iterable[tuple[str, int, int]], seq_length: int,
              max_new_tokens: int | None, fallback: Iterable[str] = ()) -> dict[str, dict[str, int]]:
    """Per-category budget table of ``(category, prompt tokens, target tokens)`` samples.

    ``fallback`` names the category of each sample trained on its shorter fallback target (a
    ``pot_cot`` record's expression alone) because the whole did not fit.

    Returns:
        ``{category: {samples, prompt_median, prompt_p90, prompt_max, target_median, target_p90,
        target_max, over_seq_length, over_max_new_tokens, fallback}}`` (ints; nearest-rank
        median/p90), categories sorted by name, plus ``"all"`` over every sample.
    """
    fell_back = Counter(fallback)
    per: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for category, prompt, target in samples:
        per[category].append((prompt, target))
        per["all"].append((prompt, target))
    table = {}
    for category in sorted(per, key=lambda c: (c == "all", c)):
        rows = per[category]
        prompts, targets = sorted(p for p, _ in rows), sorted(t for _, t in rows)
        table[category] = {
            "samples": len(rows),
            "prompt_median": _quantile(prompts, 0.5), "prompt_p90": _quantile(prompts, 0.9),
            "prompt_max": prompts[-1],
            "target_median": _quantile(targets, 0.5), "target_p90": _quantile(targets, 0.9),
            "target_max": targets[-1],
            "over_seq_length": sum(p + t > seq_length + 1 for p, t in rows),
            "over_max_new_tokens": 0 if max_new_tokens is None else sum(t > max_new_tokens for _, t in rows),
            "fallback": sum(fell_back.values()) if category == "all" else fell_back[category],
        }
    return table


def render_table(table: dict[str, dict[str, int]], seq_length: int, max_new_tokens: int | None) -> str:
    """The budget table as markdown (one row per category, ``all`` last)."""
    limit = "unchecked" if max_new_tokens is None else str(max_new_tokens)
    lines = [f"seq_length {seq_length}, max_new_tokens {limit}; token counts measured before any cut or drop:", "",
             "| category | samples | prompt median | prompt p90 | target median | target p90 | target max "
             "| over seq_length | over max_new_tokens | on the fallback (share) |", "|---|" + "---:|" * 9]
    for category, r in table.items():
        # Tables written before the fallback count existed have no such key.
        fallback = r.get("fallback", 0)
        lines.append(f"| {category} | {r['samples']} | {r['prompt_median']} | {r['prompt_p90']} | "
                     f"{r['target_median']} | {r['target_p90']} | {r['target_max']} | {r['over_seq_length']} | "
                     f"{r['over_max_new_tokens']} | {fallback} ({fallback / r['samples']:.0%}) |")
    return "\n".join(lines) + "\n"


def budget_warnings(table: dict[str, dict[str, int]], dropped: bool) -> list[str]:
    """One ``warning:`` line per category with samples over a budget (``all`` left out), saying
    whether they were truncated or dropped."""
    fate = "dropped" if dropped else "kept (truncated to seq_length where longer)"
    out = []
    for category, r in table.items():
        if category != "all" and (r["over_seq_length"] or r["over_max_new_tokens"]):
            out.append(f"warning: {category}: {r['over_seq_length']} of {r['samples']} samples over seq_length, "
                       f"{r['over_max_new_tokens']} with a target over max_new_tokens; {fate}")
    return out
