"""preprocess.dedup: normalization rules and first-occurrence dedup."""
import pytest

from preprocess.dedup import dedup, normalize


@pytest.mark.parametrize("a, b", [
    ("计算 1366.00 + 5 等于多少？", "计算 1366 + 5 等于多少？"),
    ("计算 1366.0 + 5 等于多少？", "计算 1366 + 5 等于多少？"),
    ("当 x = 0.50 时", "当 x = 0.5 时"),
    ("计算  1 +\t2\n等于多少？ ", "计算 1 + 2 等于多少？"),
    ("计算 １２３ ＋ ４ 等于多少？", "计算 123 + 4 等于多少?"),   # full-width digits, signs, ？
    ("The answer is 2.50.", "The answer is 2.5."),
])
def test_equivalent_texts_share_a_key(a, b):
    assert normalize(a) == normalize(b)


@pytest.mark.parametrize("a, b", [
    ("计算 100 + 5 等于多少？", "计算 1 + 5 等于多少？"),       # integer zeros are significant
    ("计算 1366.01 + 5 等于多少？", "计算 1366.1 + 5 等于多少？"),
    ("version 1.2.30", "version 1.2.3"),                       # not a decimal number
    ("计算 -1.50 + 2 等于多少？", "计算 1.50 + 2 等于多少？"),
    ("Solve for $X$", "Solve for $x$"),                        # case matters in math
])
def test_different_texts_keep_different_keys(a, b):
    assert normalize(a) != normalize(b)


def test_normalize_examples():
    assert normalize("  计算 1366.00 ＋ 0.50   等于多少？ ") == "计算 1366 + 0.5 等于多少?"
    with pytest.raises(TypeError):
        normalize(None)


def test_dedup_keeps_first_in_order():
    records = [
        {"problem": "计算 1.00 + 2.00 等于多少？", "solution": "first", "n": 0},
        {"problem": "b", "solution": "x", "n": 1},
        {"problem": "计算 1 + 2 等于多少？", "solution": "second", "n": 2},
        {"problem": " b ", "solution": "y", "n": 3},
        {"problem": "c", "solution": "z", "n": 4},
        {"problem": "计算 1.0 + 2.0 等于多少?", "solution": "third", "n": 5},
    ]
    kept, n_dup = dedup(records)
    assert [r["n"] for r in kept] == [0, 1, 4]
    assert n_dup == 3
    assert kept[0] is records[0]
    assert dedup([]) == ([], 0)
    kept, n_dup = dedup(records, key=lambda r: r["solution"])
    assert n_dup == 0 and len(kept) == 6
