"""Deterministic, category-stratified hold-out split.

Stratifying keeps the evaluation mix equal to the data's mix, so the accuracy measured on
the hold-out set is comparable to the contest's hidden test set, which has the same
category mix as its training data (``/work/shared/data/README.md``).
"""
from __future__ import annotations

import random
from collections import defaultdict
from fractions import Fraction
from typing import Sequence

from .classify import CATEGORIES


def _category_order(name: str) -> tuple[int, str]:
    # Fixed order independent of input order and hash seeds, so the split is reproducible.
    return (CATEGORIES.index(name) if name in CATEGORIES else len(CATEGORIES), name)


def allocate(sizes: dict[str, int], n_eval: int) -> dict[str, int]:
    """Split ``n_eval`` over categories proportionally to ``sizes`` (largest remainder).

    Every category gets ``floor(n_eval * size / total)`` or one more; ties in the remainder
    go to the larger category, then to the earlier one in ``CATEGORIES`` order.

    Raises:
        ValueError: ``n_eval`` is negative or larger than the total size.
    """
    total = sum(sizes.values())
    if n_eval < 0 or n_eval > total:
        raise ValueError(f"n_eval must be between 0 and {total}, got {n_eval}")
    if n_eval == 0:
        return {c: 0 for c in sizes}
    shares = {c: Fraction(n_eval * s, total) for c, s in sizes.items()}
    quota = {c: int(q) for c, q in shares.items()}
    left = n_eval - sum(quota.values())
    by_remainder = sorted(
        sizes, key=lambda c: (-(shares[c] - quota[c]), -sizes[c], _category_order(c))
    )
    for c in by_remainder[:left]:
        quota[c] += 1
    return quota


def split_holdout(
    items: Sequence[dict], n_eval: int, seed: int
) -> tuple[list[dict], list[dict]]:
    """Hold out ``n_eval`` items, stratified by ``item["category"]``.

    Args:
        items: dicts with a ``category`` key; they are not copied or modified.
        n_eval: number of items to hold out (0 gives an empty eval set).
        seed: seeds the draw inside each category; same inputs and seed, same split.

    Returns:
        ``(train, eval)``, each in the input order; every item is in exactly one of them.

    Raises:
        ValueError: ``n_eval`` is negative or larger than ``len(items)``.
        KeyError: an item has no ``category``.
    """
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_cat[item["category"]].append(i)
    quota = allocate({c: len(ix) for c, ix in by_cat.items()}, n_eval)
    rng = random.Random(seed)
    chosen: set[int] = set()
    for cat in sorted(by_cat, key=_category_order):
        chosen.update(rng.sample(by_cat[cat], quota[cat]))
    train = [it for i, it in enumerate(items) if i not in chosen]
    held = [it for i, it in enumerate(items) if i in chosen]
    return train, held
