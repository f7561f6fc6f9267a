"""preprocess.answer.extract (the answer a generation gives, number parsing) on real contest solutions
and on typical model outputs."""
import json
import re
from fractions import Fraction

import pytest

from preprocess.answer.extract import extract_answer, find_numbers, to_number

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def contest_solutions(shared_file):
    path = shared_file("ascend2024_math/sample_dev.jsonl")
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["solution"] for line in fh if line.strip()]


def test_every_chinese_solution_yields_the_number_after_its_marker(contest_solutions):
    chinese = [s for s in contest_solutions if "\\boxed" not in s]
    assert len(chinese) == 974
    for solution in chinese:
        # What follows the last "=", "为" or "：" up to the first space (drops "平方厘米");
        # sales/discount solutions are the bare number.
        expected = re.split(r"=|为|：", solution)[-1].split()[0]
        assert extract_answer(solution) == expected, solution
        assert to_number(expected) is not None, solution


def test_english_solutions_yield_their_boxed_content(contest_solutions):
    english = [s for s in contest_solutions if "\\boxed" in s]
    assert len(english) == 26
    for solution in english:
        answer = extract_answer(solution)
        assert answer and "\\boxed{" + answer + "}" in solution
    answers = {extract_answer(s) for s in english}
    assert {"\\dfrac{1}{36}", "7\\sqrt{5}", "-\\frac{1}{2}", "180^\\circ", "-49"} <= answers


@pytest.mark.parametrize("text, expected", [
    ("...\n√1056.35 = 32.50153842512689429138897596", "32.50153842512689429138897596"),
    ("平均值为 61.0", "61.0"),
    ("面积为 5723 平方厘米", "5723"),
    ("方程的解为：-1.3", "-1.3"),
    ("方程的解为-1.3", "-1.3"),  # sign kept right after a CJK character
    ("... $\\boxed{12}$", "12"),
    ("so the answer is $\\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}"),
    ("first \\boxed{1}, finally \\boxed{\\dfrac{1}{2}}", "\\dfrac{1}{2}"),
    ("cut off \\boxed{3", "3"),  # unclosed box: fall back to the last number
    ("函数的值为：2.854155448324274205322988364E+85", "2.854155448324274205322988364E+85"),
    ("x = 7.07E-23.", "7.07E-23"),
    ("约为 1,234.5 元", "1,234.5"),
    ("化简后为 5/6。", "5/6"),
    ("-9740.24 - -4497.85 = -5242.39", "-5242.39"),
    ("6122.87 / -6284.25 = -0.9743199268011298086486056411", "-0.9743199268011298086486056411"),
    ("5-3", "3"),  # binary minus is not a sign
    ("so $x = \\frac{3}{4}$", "\\frac{3}{4}"),
    ("结果是 −16", "−16"),
    ("没有数字", None),
    ("", None),
    (None, None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_find_numbers_keeps_order_and_fraction_tokens():
    assert find_numbers("1/2 + 3.5 = 4, x2 skipped, -7") == ["1/2", "3.5", "4", "-7"]


@pytest.mark.parametrize("s, value", [
    ("-3072.37", Fraction(-307237, 100)),
    ("0.5128205128205128", Fraction("0.5128205128205128")),
    ("32.50153842512689429138897596", Fraction(3250153842512689429138897596, 10**26)),
    ("5723", Fraction(5723)),
    ("5/6", Fraction(5, 6)),
    ("-5/6", Fraction(-5, 6)),
    ("1,234.5", Fraction(2469, 2)),
    ("7.07E-23", Fraction(707, 10**25)),
    ("2.854155448324274205322988364E+85", Fraction(2854155448324274205322988364 * 10**58)),
    ("\\frac{3}{4}", Fraction(3, 4)),
    ("-\\dfrac{1}{36}", Fraction(-1, 36)),
    ("\\tfrac{-1}{2}", Fraction(-1, 2)),
    ("\\frac12", Fraction(1, 2)),
    ("$-16$", Fraction(-16)),
    ("180^\\circ", Fraction(180)),
    ("50\\%", Fraction(50)),  # contest discount references are percentages already
    ("(-3)", Fraction(-3)),
    ("12.", Fraction(12)),
    ("−2.5", Fraction(-5, 2)),
])
def test_to_number_parses(s, value):
    assert to_number(s) == value


@pytest.mark.parametrize("s", [None, "", "7\\sqrt{5}", "x=3", "1/0", "\\frac{1}{0}", "abc", "1.2.3"])
def test_to_number_rejects(s):
    assert to_number(s) is None
