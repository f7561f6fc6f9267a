"""preprocess.split: stratified, deterministic, disjoint hold-out."""
from collections import Counter

import pytest

from preprocess.split import allocate, split_holdout

pytestmark = pytest.mark.unit

SIZES = {"addition": 500, "division": 300, "mean": 120, "english": 60, "mass": 15, "simplify": 5}


def _items():
    return [{"id": f"{cat}-{i}", "category": cat} for cat, n in SIZES.items() for i in range(n)]


def test_disjoint_and_complete():
    items = _items()
    train, held = split_holdout(items, 100, seed=3)
    train_ids, held_ids = {t["id"] for t in train}, {h["id"] for h in held}
    assert len(held) == 100 and len(held_ids) == 100
    assert train_ids.isdisjoint(held_ids)
    assert train_ids | held_ids == {it["id"] for it in items}
    assert len(train) + len(held) == len(items)
    order = {it["id"]: i for i, it in enumerate(items)}
    assert [order[t["id"]] for t in train] == sorted(order[t["id"]] for t in train)


def test_stratified_within_one():
    items = _items()
    total = len(items)
    for n_eval in (1, 37, 100, 500):
        _, held = split_holdout(items, n_eval, seed=0)
        counts = Counter(h["category"] for h in held)
        assert sum(counts.values()) == n_eval
        for cat, size in SIZES.items():
            assert abs(counts[cat] - n_eval * size / total) < 1, (n_eval, cat)


def test_allocate_exact_values():
    assert allocate(SIZES, 100) == {"addition": 50, "division": 30, "mean": 12, "english": 6,
                                    "mass": 2, "simplify": 0}
    assert allocate({"a": 1, "b": 1}, 1) in ({"a": 1, "b": 0}, {"a": 0, "b": 1})
    assert allocate({"a": 3}, 0) == {"a": 0}


def test_deterministic_and_seed_sensitive():
    items = _items()
    ids = lambda split: [h["id"] for h in split[1]]  # noqa: E731
    assert ids(split_holdout(items, 50, seed=1)) == ids(split_holdout(items, 50, seed=1))
    assert ids(split_holdout(items, 50, seed=1)) != ids(split_holdout(items, 50, seed=2))


def test_edge_cases():
    items = _items()
    train, held = split_holdout(items, 0, seed=0)
    assert held == [] and train == items
    train, held = split_holdout(items, len(items), seed=0)
    assert train == [] and len(held) == len(items)
    with pytest.raises(ValueError):
        split_holdout(items, len(items) + 1, seed=0)
    with pytest.raises(ValueError):
        split_holdout(items, -1, seed=0)
    with pytest.raises(KeyError):
        split_holdout([{"id": 1}], 0, seed=0)


def _logic_items(sizes):
    """Sub-questions of problems p0, p1, ... with ``sizes[k]`` sub-questions each, among math items."""
    items = [{"id": f"m{i}", "category": "addition"} for i in range(30)]
    items += [{"id": f"p{k}.q{q}", "category": "logic", "logic": {"problem_id": f"p{k}", "context": f"c{k}"}}
              for k, n in enumerate(sizes) for q in range(n)]
    return items


@pytest.mark.parametrize("seed", range(5))
def test_logic_problems_are_held_out_whole(seed):
    sizes = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 2, 3]
    items = _logic_items(sizes)
    train, held = split_holdout(items, 20, seed=seed)
    problem = lambda it: it["logic"]["problem_id"]  # noqa: E731
    held_problems = {problem(it) for it in held if "logic" in it}
    assert held_problems.isdisjoint(problem(it) for it in train if "logic" in it)
    counts = Counter(problem(it) for it in held if "logic" in it)
    assert all(counts[p] == sizes[int(p[1:])] for p in held_problems)
    # Stratified as before: 35 logic of 65 items -> 11 of 20 (round(10.77)), 9 addition.
    assert Counter(it["category"] for it in held) == {"logic": 11, "addition": 9}


def test_logic_problems_without_id_group_by_context():
    items = [{"id": f"q{q}", "category": "logic", "logic": {"problem_id": "", "context": f"c{q // 3}"}}
             for q in range(9)]
    _, held = split_holdout(items, 3, seed=0)
    assert len({it["logic"]["context"] for it in held}) == 1 and len(held) == 3



def test_math_hold_out_is_the_same_draw_as_before_grouping():
    # Held out by the per-item split of 7b226c6 (before problems were grouped), seed 3.
    _, held = split_holdout(_items(), 10, seed=3)
    assert sorted(h["id"] for h in held) == [
        "addition-189", "addition-278", "addition-303", "addition-468", "addition-66", "division-242",
        "division-297", "division-33", "english-15", "mean-77"]
