"""eval.compare rules on the contest's 28-digit results and their float renderings."""
import pytest

from eval.compare import is_correct, parse_rule

pytestmark = pytest.mark.unit

SQRT_REF = "32.50153842512689429138897596"  # √1056.35, decimal at 28 significant digits
SQRT_FLOAT = repr(float(SQRT_REF))  # what a float-minded model writes


def test_float_rendering_is_what_we_think():
    assert SQRT_FLOAT == "32.501538425126896"  # nearest double; 1.7086e-15 above the reference


@pytest.mark.parametrize("rule, tol, expected", [
    ("exact", 1e-6, False),
    ("relative", 1e-6, True),
    ("relative", 1e-16, True),   # 1.71e-15 <= 1e-16 * 32.50
    ("relative", 1e-17, False),  # 1.71e-15 >  1e-17 * 32.50
    ("absolute", 1e-6, True),
    ("absolute", 1e-14, True),
    ("absolute", 1e-15, False),
    ("round:10", 0, True),
    ("round:13", 0, True),       # ...1268|943 and ...1268|96 both round up to ...1269
    ("round:14", 0, False),      # ...12689|43 -> ...12689 but ...12689|6 -> ...12690
])
def test_28_digit_reference_vs_float(rule, tol, expected):
    assert is_correct(SQRT_FLOAT, SQRT_REF, rule=rule, tol=tol) is expected


def test_exact_accepts_equal_values_written_differently():
    assert is_correct(SQRT_REF, SQRT_REF, "exact")
    assert is_correct("61", "61.0", "exact")
    assert is_correct("-16956.7", "-16956.70", "exact")
    assert is_correct("\\frac{3}{4}", "0.75", "exact")
    assert is_correct("1,234.5", "1234.50", "exact")
    assert is_correct("2.5E+3", "2500", "exact")
    assert not is_correct("5723", "5724", "exact")


def test_large_scientific_values_need_relative_tolerance():
    ref = "2.854155448324274205322988364E+85"
    pred = repr(float(ref))  # '2.854155448324274e+85'
    assert is_correct(pred, ref, "relative", 1e-12)
    assert not is_correct(pred, ref, "absolute", 1e-6)
    assert not is_correct(pred, ref, "exact")


def test_relative_is_absolute_below_one():
    # |r| < 1: the bound is tol itself, not tol * |r|.
    assert is_correct("0.0000005", "0", "relative", 1e-6)
    assert not is_correct("0.000002", "0", "relative", 1e-6)
    assert is_correct("-0.9743199268011298", "-0.9743199268011298086486056411", "relative", 1e-15)


def test_tolerance_boundary_is_inclusive_and_decimal():
    # 1e-6 is read as exactly 10**-6, so a difference of exactly 0.000001 passes.
    assert is_correct("1.000001", "1", "absolute", 1e-6)
    assert not is_correct("1.0000011", "1", "absolute", 1e-6)


def test_round_rule_rounds_half_away_from_zero():
    assert is_correct("21.24", "21.240000000000002", "round:2")
    assert is_correct("0.13", "0.125", "round:2")
    assert is_correct("-0.13", "-0.125", "round:2")
    assert not is_correct("0.12", "0.125", "round:2")
    assert is_correct("11.27", "11.267605633802818", "round:2")
    assert not is_correct("11.26", "11.267605633802818", "round:2")
    assert is_correct("5", "4.6", "round:0")


def test_fractions_against_decimals():
    assert is_correct("0.8333333333", "5/6", "relative", 1e-6)
    assert not is_correct("0.8333333333", "5/6", "exact")
    assert is_correct("5/6", "\\frac{5}{6}", "exact")
    assert is_correct("10/12", "5/6", "exact")


def test_non_numeric_references_compare_as_normalized_text():
    assert is_correct("7 \\sqrt{5}", "7\\sqrt{5}")
    assert is_correct("$7\\sqrt{5}$", "7\\sqrt{5}")
    assert not is_correct("7\\sqrt{6}", "7\\sqrt{5}")
    assert not is_correct("15.65", "7\\sqrt{5}")  # a number never equals a non-numeric answer
    assert is_correct("180", "180^\\circ", "exact")


def test_missing_prediction_is_wrong():
    assert not is_correct(None, "12")


@pytest.mark.parametrize("rule", ["approx", "round:", "round:-1", "round:x", "RELATIVE"])
def test_bad_rule_raises(rule):
    with pytest.raises(ValueError, match="unknown rule"):
        is_correct("1", "1", rule)


@pytest.mark.parametrize("tol", [-1e-6, float("nan"), float("inf")])
def test_bad_tol_raises(tol):
    with pytest.raises(ValueError, match="tol"):
        is_correct("1", "1", "relative", tol)


def test_parse_rule():
    assert parse_rule("round:3") == ("round", 3)
    assert parse_rule("exact") == ("exact", None)
