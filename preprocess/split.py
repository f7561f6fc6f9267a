"""Deterministic, category-stratified hold-out split, by problem for logic sub-questions.

Stratifying keeps the evaluation mix equal to the data's mix, so the accuracy measured on
the hold-out set is comparable to the contest's hidden test set, which has the same
category mix as its training data (``/work/shared/data/README.md``).

The sub-questions of one Tianchi problem share its context; holding out some of them while
training on their siblings would measure memorised context, not reasoning (issue 24: 83 of 90
held-out problems had siblings in training). So a problem goes to one side whole.
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


def group_key(item: dict, index: int) -> tuple:
    """The unit ``split_holdout`` keeps on one side: a logic item's problem, any other item alone.

    A logic item (``item["logic"]``, ``preprocess.logic.tianchi_records``) is grouped by its
    ``problem_id``, or by its context when the file gives no id.
    """
    logic = item.get("logic")
    if logic is None:
        return ("item", index)
    return ("problem", logic["problem_id"] or logic["context"])


def _fill(groups: list[list[int]], quota: int) -> list[int]:
    """Take whole groups, in the given (shuffled) order, while they fit in ``quota`` items."""
    taken: list[int] = []
    for group in groups:
        if len(taken) == quota:
            break
        if len(taken) + len(group) <= quota:
            taken.extend(group)
    return taken


def split_holdout(
    items: Sequence[dict], n_eval: int, seed: int
) -> tuple[list[dict], list[dict]]:
    """Hold out about ``n_eval`` items, stratified by ``item["category"]``, whole problems at a time.

    Each category's share of ``n_eval`` (:func:`allocate`) is filled with whole groups
    (:func:`group_key`: the sub-questions of one logic problem, any other item alone) drawn in a
    seeded random order, a group being skipped when it no longer fits. A category of single items
    always fills its share exactly; a logic share falls short only when no remaining problem has
    few enough sub-questions (``len(eval)`` then is below ``n_eval``; the run report counts it).

    Args:
        items: dicts with a ``category`` key (and ``logic`` for Tianchi sub-questions); they are
            not copied or modified.
        n_eval: number of items to hold out (0 gives an empty eval set).
        seed: seeds the draw inside each category; same inputs and seed, same split.

    Returns:
        ``(train, eval)``, each in the input order; every item is in exactly one of them, and no
        logic problem has sub-questions in both.

    Raises:
        ValueError: ``n_eval`` is negative or larger than ``len(items)``.
        KeyError: an item has no ``category``.
    """
    by_cat: dict[str, dict[tuple, list[int]]] = defaultdict(dict)
    for i, item in enumerate(items):
        by_cat[item["category"]].setdefault(group_key(item, i), []).append(i)
    quota = allocate({c: sum(map(len, g.values())) for c, g in by_cat.items()}, n_eval)
    rng = random.Random(seed)
    chosen: set[int] = set()
    for cat in sorted(by_cat, key=_category_order):
        groups = list(by_cat[cat].values())
        if all(len(g) == 1 for g in groups):
            # The same draw as before problems were grouped, so earlier math hold-outs stay the same.
            chosen.update(g[0] for g in rng.sample(groups, quota[cat]))
        else:
            chosen.update(_fill(rng.sample(groups, len(groups)), quota[cat]))
    train = [it for i, it in enumerate(items) if i not in chosen]
    held = [it for i, it in enumerate(items) if i in chosen]
    return train, held
