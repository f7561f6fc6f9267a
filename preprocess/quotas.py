"""Per-category training quotas (counts or ratios, with upsampling) and the contamination check.

Quota spec per category (YAML ``quotas:`` mapping, see ``configs/preprocess/quotas_example.yaml``):
    ``5000``                     draw 5000 items (all of them when fewer are available)
    ``0.25``                     draw 25 % of the available items (rounded half-up)
    ``{count: N | ratio: R, upsample: K}``   draw, then repeat each drawn item K times
A ``default`` entry applies to categories not listed; without one they are taken whole.
Upsampling rare categories (the contest has 100 mass and 45 simplify items among 548,942,
``/work/shared/data/README.md``) keeps them from vanishing in training.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Sequence

from .dedup import normalize


@dataclass(frozen=True)
class Quota:
    """How many items of one category to train on: ``count`` or ``ratio`` (one of them), times ``upsample``."""

    count: int | None = None
    ratio: float | None = None
    upsample: int = 1

    def draw_size(self, available: int) -> int:
        """Number of distinct items to draw out of ``available``."""
        if self.count is not None:
            return min(self.count, available)
        if self.ratio is not None:
            return min(available, int(available * self.ratio + 0.5))
        return available


def parse_quota(category: str, spec: object) -> Quota:
    """Parse one YAML quota value (see the module doc).

    Raises:
        ValueError: wrong type or range; the message names the category.
    """
    where = f"quota for {category!r}"
    if isinstance(spec, bool):
        raise ValueError(f"{where}: expected a count, a ratio or a mapping, got {spec!r}")
    if isinstance(spec, int):
        spec = {"count": spec}
    elif isinstance(spec, float):
        spec = {"ratio": spec}
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a count, a ratio or a mapping, got {spec!r}")
    unknown = set(spec) - {"count", "ratio", "upsample"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    if "count" in spec and "ratio" in spec:
        raise ValueError(f"{where}: give count or ratio, not both")
    count, ratio, up = spec.get("count"), spec.get("ratio"), spec.get("upsample", 1)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ValueError(f"{where}: count must be an integer >= 0, got {count!r}")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float))
                              or not 0 <= ratio <= 1):
        raise ValueError(f"{where}: ratio must be a number in [0, 1], got {ratio!r}")
    if isinstance(up, bool) or not isinstance(up, int) or up < 1:
        raise ValueError(f"{where}: upsample must be an integer >= 1, got {up!r}")
    return Quota(count=count, ratio=None if ratio is None else float(ratio), upsample=up)


def parse_quotas(spec: dict | None) -> dict[str, Quota]:
    """Parse the ``quotas:`` mapping ``{category or "default": spec}``.

    Raises:
        ValueError: not a mapping, or a bad entry.
    """
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise ValueError(f"quotas must be a mapping of category to quota, got {type(spec).__name__}")
    return {str(cat): parse_quota(str(cat), value) for cat, value in spec.items()}


def apply_quotas(items: Sequence[dict], quotas: dict[str, Quota], seed: int) -> list[dict]:
    """Draw each category's quota (seeded, without replacement) and upsample.

    Args:
        items: training items with a ``category`` key.
        quotas: from :func:`parse_quotas`; empty means "everything once".
        seed: seed of the draws; same inputs and seed give the same list.

    Returns:
        The drawn items in input order; an item upsampled K times appears K times in a row.
    """
    default = quotas.get("default", Quota())
    by_cat: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_cat.setdefault(it["category"], []).append(i)
    rng = random.Random(seed)
    repeat: dict[int, int] = {}
    for cat in sorted(by_cat):
        quota = quotas.get(cat, default)
        idx = by_cat[cat]
        size = quota.draw_size(len(idx))
        chosen = idx if size == len(idx) else rng.sample(idx, size)
        for i in chosen:
            repeat[i] = quota.upsample
    return [items[i] for i in sorted(repeat) for _ in range(repeat[i])]


def contamination_keys(problems: Iterable[str]) -> set[str]:
    """Return the normalized keys (:func:`preprocess.dedup.normalize`) of evaluation problems."""
    return {normalize(p) for p in problems}


def context_key(record: dict) -> str | None:
    """The normalized context of a logic record or item (``record["logic"]["context"]``), else None.

    Sub-questions of one Tianchi problem differ in question and options, so their problem keys
    differ; a training sub-question that shares an evaluation problem's context is contaminated
    all the same.
    """
    logic = record.get("logic")
    return normalize(logic["context"]) if logic else None


def context_keys(records: Iterable[dict]) -> set[str]:
    """Return :func:`context_key` of every logic record in ``records``."""
    return {key for key in map(context_key, records) if key is not None}
