"""eval.compare rules on the contest's 28-digit results, their float renderings and float references."""
import pytest

from eval.compare import is_correct, parse_rule

pytestmark = pytest.mark.unit

SQRT_REF = "32.50153842512689429138897596"  # √1056.35, decimal at 28 significant digits
SQRT_FLOAT = repr(float(SQRT_REF))  # what a float-minded model writes


def test_float_rendering_is_what_we_think():
    assert SQRT_FLOAT == "32.501538425126896"  # nearest double; 1.7086e-15 above the reference


@pytest.mark.parametrize("pred, rule, expected", [
    (SQRT_FLOAT, "exact", False),
    (SQRT_FLOAT, "printed", False),        # 1.7e-15 off, more than half its last digit (5e-16)
    ("32.501538425126894", "printed", True),   # the reference correctly rounded to 17 digits
    ("32.50154", "printed", True),         # 7 digits, correctly rounded
    ("32.50153", "printed", False),        # truncated: 8.4e-6 > 5e-6
    ("32.502", "printed", True),           # 5 digits: the floor
    ("32.50", "printed", False),           # 4 digits: below the floor
    (SQRT_FLOAT, "round:13", True),
    (SQRT_FLOAT, "round:14", True),        # |err| 1.7e-15 <= 5e-15: correct to 14 places
    (SQRT_FLOAT, "round:15", False),       # 1.7e-15 > 5e-16
])
def test_28_digit_reference(pred, rule, expected):
    assert is_correct(pred, SQRT_REF, rule=rule) is expected


def test_exact_accepts_equal_values_written_differently():
    assert is_correct(SQRT_REF, SQRT_REF, "exact")
    assert is_correct("61", "61.0", "exact")
    assert is_correct("-16956.7", "-16956.70", "exact")
    assert is_correct("\\frac{3}{4}", "0.75", "exact")
    assert is_correct("1,234.5", "1234.50", "exact")
    assert is_correct("2.5E+3", "2500", "exact")
    assert not is_correct("5723", "5724", "exact")


def test_exact_is_the_default_and_rejects_a_wrong_last_digit_on_large_values():
    assert not is_correct("72478650", "72478608.3184")
    assert not is_correct("72478608.3185", "72478608.3184")
    ref = "2.854155448324274205322988364E+85"
    assert is_correct("2.854155448324274205322988364e85", ref)
    assert not is_correct("2.854155448324274205322988365E+85", ref)


def test_printed_follows_the_digits_of_the_prediction_with_a_floor():
    assert not is_correct("72478650", "72478608.3184", "printed")   # off by 41.7 at the units digit
    assert is_correct("72478608", "72478608.3184", "printed")       # rounded at the units digit
    assert not is_correct("72478609", "72478608.3184", "printed")
    assert is_correct("0.41935", "0.41935483870967744", "printed")  # 5 decimals below 1
    assert not is_correct("0.4194", "0.41935483870967744", "printed")  # 4 digits: below the floor
    assert is_correct("0.05123", "0.0512345678", "printed")   # below 1: 5 decimals count as 5 digits
    assert not is_correct("0.0512", "0.0512345678", "printed")
    assert not is_correct("0.05124", "0.0512345678", "printed")  # 5.4e-6 off
    assert is_correct("0.5", "0.5", "printed") and is_correct("736", "736", "printed")
    assert is_correct("0.5", "0.50", "printed") and not is_correct("0.4", "0.41", "printed")
    assert is_correct("-4584.5", "-4584.53", "printed")
    assert not is_correct("-4585", "-4584.53", "printed")  # 4 digits of a 6-digit reference
    assert is_correct("7.07E-23", "7.07E-23", "printed")
    assert is_correct("2.85416E+85", "2.854155448324274205322988364E+85", "printed")
    assert not is_correct("2.85415E+85", "2.854155448324274205322988364E+85", "printed")


def test_round_n_does_not_round_twice():
    ref = "-0.41935483870967744"
    assert is_correct("-0.419355", ref, "round:5")   # correct to 6 places, so to 5 as well
    assert is_correct("-0.41935", ref, "round:5")
    assert not is_correct("-0.41936", ref, "round:5")  # 5.2e-6 off
    assert is_correct("21.24", "21.240000000000002", "round:2")
    assert is_correct("0.13", "0.125", "round:2") and is_correct("0.12", "0.125", "round:2")  # a tie
    assert is_correct("11.27", "11.267605633802818", "round:2")
    assert not is_correct("11.26", "11.267605633802818", "round:2")
    assert is_correct("5", "4.6", "round:0") and not is_correct("4", "4.6", "round:0")


@pytest.mark.parametrize("rule", ["exact", "printed", "round:2"])
def test_simplify_needs_lowest_terms_under_every_rule(rule):
    assert is_correct("5/6", "5/6", rule, category="simplify")
    assert is_correct("\\frac{5}{6}", "5/6", rule, category="simplify")
    assert not is_correct("10/12", "5/6", rule, category="simplify")
    assert not is_correct("\\frac{10}{12}", "5/6", rule, category="simplify")
    assert not is_correct("0.8333333333", "5/6", rule, category="simplify")
    assert is_correct("3", "3/1", rule, category="simplify")
    assert not is_correct("6/2", "3/1", rule, category="simplify")
    assert is_correct("10/12", "5/6", rule)  # without the category it is only a value


FLOAT_REF = "1.8888888888888888"  # linear equation -18x + 34 = 0, repr(34 / 18)
DECIMAL_28 = "1.888888888888888888888888889"  # the same root evaluated at 28 digits


@pytest.mark.parametrize("rule", ["exact", "printed", "round:5"])
def test_float_references_accept_the_value_they_round(rule):
    assert is_correct(DECIMAL_28, FLOAT_REF, rule, category="linear_equation")
    assert is_correct("17/9", FLOAT_REF, rule, category="linear_equation")
    assert is_correct("1.888888888888889", FLOAT_REF, rule, category="linear_equation")
    if rule != "round:5":  # 1e-13 off: wrong, though correct to 5 places
        assert not is_correct("1.8888888888889888", FLOAT_REF, rule, category="linear_equation")
    # discount (71 - 63) / 71 * 100 rounds twice in float
    assert is_correct("11.26760563380281690140845070", "11.267605633802818", rule, category="discount")


def test_float_reference_slack_only_for_float_categories():
    assert not is_correct(DECIMAL_28, FLOAT_REF, "exact")
    assert not is_correct(DECIMAL_28, FLOAT_REF, "exact", category="division")
    assert not is_correct("1.888888888888", FLOAT_REF, "exact", category="linear_equation")
    assert is_correct("1.888888888889", FLOAT_REF, "printed", category="linear_equation")  # rounded
    assert not is_correct("1.888888888888", FLOAT_REF, "printed", category="linear_equation")  # truncated
    assert is_correct("1.888888888888", FLOAT_REF, "round:5", category="linear_equation")


def test_non_numeric_references_compare_as_normalized_text():
    assert is_correct("7 \\sqrt{5}", "7\\sqrt{5}")
    assert is_correct("$7\\sqrt{5}$", "7\\sqrt{5}")
    assert not is_correct("7\\sqrt{6}", "7\\sqrt{5}")
    assert not is_correct("15.65", "7\\sqrt{5}")  # a number never equals a non-numeric answer
    assert is_correct("180", "180^\\circ", "exact")


def test_missing_prediction_is_wrong():
    assert not is_correct(None, "12")


@pytest.mark.parametrize("rule", ["approx", "round:", "round:-1", "round:x", "relative", "absolute"])
def test_bad_rule_raises(rule):
    with pytest.raises(ValueError, match="unknown rule"):
        is_correct("1", "1", rule)


def test_parse_rule():
    assert parse_rule("exact") == ("exact", None)
    assert parse_rule("printed") == ("printed", None)
    assert parse_rule("round:5") == ("round", 5)
    assert parse_rule("fewer_decimals") == ("fewer_decimals", None)


@pytest.mark.parametrize("pred, ref, ok", [
    ("98.77", "98.76988407404354142259372287", True),   # 2 decimals: 98.77 = 98.77
    ("99", "98.76988407404354142259372287", True),      # 0 decimals: the teams' scorers were this lenient
    ("98.78", "98.76988407404354142259372287", False),
    ("98.8", "98.76", True), ("98.7", "98.76", False),  # 1 decimal
    ("-2.5", "-2.45", True),                            # half-up on the magnitude
    ("0.41935", "0.41935483870967744", True), ("0.41936", "0.41935483870967744", False),
    ("7262.36", "7262.4", True), ("7262.34", "7262.4", False),  # the reference can have fewer decimals
    ("5/6", "0.8333", False), ("1e2", "100.0", True),  # fractions/exponents: exact only (1e2 = 100 is exact)
    ("1.1e2", "110.4", False),
])
def test_fewer_decimals_rounds_both_to_the_fewer_decimals(pred, ref, ok):
    assert is_correct(pred, ref, "fewer_decimals") is ok
