"""preprocess.dedup: normalization rules and first-occurrence dedup."""
import pytest

from preprocess.dedup import dedup, first_occurrences, normalize

pytestmark = pytest.mark.unit


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


# --- near-duplicates (MinHash LSH) ---

from preprocess.dedup import near_dedup, shingles, signature  # noqa: E402


def test_shingles_use_the_normalized_text():
    assert shingles("Tom  has 2.50 apples") == shingles("tom has 2.5 ａｐｐｌｅｓ")
    assert shingles("one two") == {b"one two"}
    assert len(shingles("a b c d e")) == 3


def test_near_duplicates_keep_the_first_and_point_to_it():
    base = ("A farmer has 17 cows and buys 5 more every week. After 6 weeks he sells a third of "
            "his herd at the market. How many cows does the farmer have left at the end?")
    reworded = base.replace("A farmer", "The farmer").replace("  ", " ")
    other = "Sara reads 12 pages a day. How many pages does she read in a week?"
    marks = near_dedup([other, base, reworded, other + " ", base], threshold=0.8)
    assert marks == [None, None, 1, 0, 1]
    assert near_dedup([base, reworded], threshold=0.95) == [None, None]
    sigs = [signature(t) for t in (base, reworded)]
    assert sigs[0].shape == (128,) and near_dedup([base, reworded], 0.8, signatures=sigs) == [None, 0]
    with pytest.raises(ValueError):
        near_dedup([base], threshold=1.0)  # datasketch needs at least two bands


def test_real_gsm8k_near_duplicate(shared_file):
    path = shared_file("gsm8k/train.jsonl")
    import json

    rows = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines()]
    # Lines 2484 and 6692 differ only in the name (Josie / Amanda); surround them with other items.
    texts = rows[2470:2500] + rows[6680:6700]
    marks = near_dedup(texts, threshold=0.85)
    josie, amanda = 2483 - 2470, 30 + 6691 - 6680
    assert texts[josie].startswith("Josie") and texts[amanda].startswith("Amanda")
    assert [i for i, m in enumerate(marks) if m is not None] == [amanda] and marks[amanda] == josie


def test_a_changed_number_is_not_a_near_duplicate():
    base = ("A farmer has 17 cows and buys 5 more every week. After 6 weeks he sells a third of "
            "his herd at the market. How many cows does the farmer have left at the end?")
    assert near_dedup([base, base.replace("17 cows", "18 cows")], threshold=0.5) == [None, None]
    assert near_dedup([base, base.replace("17 cows", "17.00 cows")], threshold=0.5) == [None, 0]
    f = "If $f(x) = 4x^2 + (-9)x + (-4)$, what is $f(5)$? Give the value of the function at that point."
    assert near_dedup([f, f.replace("(-9)", "(9)")], threshold=0.5) == [None, None]  # a sign is a number too
    assert near_dedup([f, f.replace("Give", "State")], threshold=0.5) == [None, 0]


def test_first_occurrences_points_each_duplicate_at_its_first_copy():
    assert first_occurrences(["a", "b", "a", "c", "b", "a"]) == [None, None, 0, None, 1, 0]
    assert first_occurrences([]) == []
