"""preprocess.rounding: half-up rounding of verified answers in training targets."""
import pytest

from preprocess.cot import synthesize
from preprocess.rounding import apply_rounding, round_answer

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("answer, decimals, expected", [
    ("98.76988407404354142259372287", 2, "98.77"),
    ("1.005", 2, "1.01"),             # half-up, on the decimal digits (a float would give 1.0)
    ("-2.345", 2, "-2.35"),
    ("-0.004", 2, "0.00"),            # no negative zero
    ("2.5", 2, "2.50"),
    ("61.0", 0, "61"),
    ("2.85E+5", 1, "285000.0"),
])
def test_round_answer(answer, decimals, expected):
    assert round_answer(answer, decimals) == expected


def test_round_answer_errors():
    with pytest.raises(ValueError, match="not a number"):
        round_answer("abc", 2)
    with pytest.raises(ValueError, match="decimals"):
        round_answer("1.5", -1)


def test_apply_rounding_rewrites_the_last_statement_only():
    r = synthesize("计算 9755.49 的平方根？", "√9755.49 = 98.76988407404354142259372287", "square_root")
    assert r.verified
    cot, ans = apply_rounding(r.cot, r.answer, 2)
    assert ans == "98.77" and cot.endswith("√9755.49 = 98.77")
    assert cot.count("98.76988407404354142259372287") == r.cot.count("98.76988407404354142259372287") - 1
    assert apply_rounding("no number here", "3.14159", 2) == ("no number here\n保留 2 位小数：3.14", "3.14")
