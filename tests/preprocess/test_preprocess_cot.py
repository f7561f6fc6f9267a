"""preprocess.cot: re-derivation of every real answer, CoT shape, and rejection of wrong answers."""
import decimal
import json
import re
from collections import Counter

import pytest

from preprocess.classify import classify
from preprocess.cot import CotResult, synthesize
from preprocess.answer.boxed import last_boxed

pytestmark = pytest.mark.unit

COMPUTATIONAL = {
    "addition", "subtraction", "multiplication", "division", "square_root", "power",
    "linear_equation", "discount", "mean", "mass", "area", "sales", "simplify", "function_value",
}
LAST_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:E[+-]\d+)?(?!.*\d)", re.S)


@pytest.fixture(scope="module")
def sample_rows(shared_file):
    path = shared_file("ascend2024_math/sample_dev.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_real_item_verifies(sample_rows):
    failures, per_cat = [], Counter()
    for r in sample_rows:
        cat = classify(r["problem"], r["solution"])
        res = synthesize(r["problem"], r["solution"], cat)
        per_cat[cat] += res.verified
        if not res.verified:
            failures.append((r["problem"], r["solution"], res.reason))
    # No real item has a wrong reference answer once sales is read as an unrounded float.
    assert failures == []
    assert sum(per_cat.values()) == 1000
    assert sum(v for c, v in per_cat.items() if c in COMPUTATIONAL) == 974


def test_real_cot_ends_with_solution_and_its_answer(sample_rows):
    for r in sample_rows:
        cat = classify(r["problem"])
        if cat not in COMPUTATIONAL:
            continue
        res = synthesize(r["problem"], r["solution"], cat)
        lines = res.cot.split("\n")
        assert lines[-1] == r["solution"]
        assert len(lines) >= 2, "a CoT has at least one step before the answer line"
        # The CoT's final number is the answer (for a fraction p/q, its last number is q).
        assert LAST_NUMBER.search(res.cot).group(0) == res.answer.split("/")[-1]
        assert res.answer in r["solution"]


def test_real_english_boxed_answers(sample_rows):
    answers = {}
    for r in sample_rows:
        if classify(r["problem"]) == "english":
            res = synthesize(r["problem"], r["solution"], "english")
            assert res.verified and res.cot == r["solution"]
            answers[r["problem"]] = res.answer
    assert len(answers) == 26

    def answer_of(prefix):
        (hit,) = [a for p, a in answers.items() if p.startswith(prefix)]
        return hit

    assert answer_of("The ratio of $x$ to $y$") == "18"
    assert answer_of("Bonnie makes the frame") == "\\dfrac{1}{36}"
    assert answer_of("Simplify $\\sqrt{245}$.") == "7\\sqrt{5}"
    assert answer_of("In circle $J$") == "180^\\circ"
    assert answer_of("The function $f$ satisfies") == "-49"  # \boxed is not on the last line


def test_sales_rule_is_unrounded_float(sample_rows):
    sales = {r["problem"]: r["solution"] for r in sample_rows if classify(r["problem"]) == "sales"}
    p = "去年销售额为 12 万元，今年销售额增加了 77%，请计算今年的销售额。"
    assert sales[p] == "21.240000000000002" == repr(12 * (1 + 77 / 100))
    assert synthesize(p, "21.240000000000002", "sales").verified
    bad = synthesize(p, "21.25", "sales")
    assert not bad.verified and "21.25" in bad.reason and "21.24" in bad.reason


@pytest.mark.parametrize("problem, solution, category, answer", [
    ("计算 -3828.45 + 756.08 等于多少？", "-3828.45 + 756.08 = -3072.37", "addition", "-3072.37"),
    ("计算 -9740.24 - -4497.85 等于多少？", "-9740.24 - -4497.85 = -5242.39", "subtraction", "-5242.39"),
    ("计算 -3712.52 * 9902.15 等于多少？", "-3712.52 * 9902.15 = -36761929.9180", "multiplication",
     "-36761929.9180"),
    ("计算 6122.87 / -6284.25 等于多少？", "6122.87 / -6284.25 = -0.9743199268011298086486056411",
     "division", "-0.9743199268011298086486056411"),
    ("计算 1056.35 的平方根？", "√1056.35 = 32.50153842512689429138897596", "square_root",
     "32.50153842512689429138897596"),
    ("计算 183.94 的 5 次方？", "183.94^5 = 210562442992.2269624224", "power", "210562442992.2269624224"),
    ("计算 -53.13 的 5 次方？", "-53.13^5 = -423349527.6524537793", "power", "-423349527.6524537793"),
    ("解方程 -20x + -26 = 0", "方程的解为：-1.3", "linear_equation", "-1.3"),
    ("当 x = 7.59 时，求函数 y = 68x^95 的值", "函数的值为：2.854155448324274205322988364E+85",
     "function_value", "2.854155448324274205322988364E+85"),
    ("求以下数据的平均值：[86, 21, 18]", "平均值为 41.666666666666664", "mean", "41.666666666666664"),
    ("一个长方形的长为 59 厘米，宽为 97 厘米，请计算其面积。", "面积为 5723 平方厘米", "area", "5723"),
    ("商品原价为 71 元，打折后的价格为 63 元，请计算打折的折扣比例。", "11.267605633802818", "discount",
     "11.267605633802818"),
    ("商品原价为 50 元，打折后的价格为 60 元，请计算打折的折扣比例。", "-20.0", "discount", "-20.0"),
    ("某物体的密度为 9 克/立方厘米，体积为 3 立方厘米，请计算该物体的质量。", "27 克", "mass", "27"),
    ("将分数 4/6 进行简化。", "最简化的形式为：2/3", "simplify", "2/3"),
])
def test_contest_examples_verify(problem, solution, category, answer):
    res = synthesize(problem, solution, category)
    assert res == CotResult(res.cot, answer, True, "")
    assert res.cot.split("\n")[-1] == solution


@pytest.mark.parametrize("problem, wrong, category, given, derived", [
    ("计算 -3828.45 + 756.08 等于多少？", "-3828.45 + 756.08 = -3072.38", "addition", "-3072.38", "-3072.37"),
    ("计算 -9740.24 - -4497.85 等于多少？", "-9740.24 - -4497.85 = -14238.09", "subtraction",
     "-14238.09", "-5242.39"),
    ("计算 7904.09 * 9169.76 等于多少？", "7904.09 * 9169.76 = 72478608.3185", "multiplication",
     "72478608.3185", "72478608.3184"),
    ("计算 6122.87 / -6284.25 等于多少？", "6122.87 / -6284.25 = -0.9743199268011298086486056412",
     "division", "-0.9743199268011298086486056412", "-0.9743199268011298086486056411"),
    ("计算 1056.35 的平方根？", "√1056.35 = 32.5", "square_root", "32.5", "32.50153842512689429138897596"),
    ("计算 -185.24 的 2 次方？", "-185.24^2 = -34313.8576", "power", "-34313.8576", "34313.8576"),
    ("解方程 -39x + 20 = 0", "方程的解为：-0.5128205128205128", "linear_equation",
     "-0.5128205128205128", "0.5128205128205128"),
    ("当 x = 1.36 时，求函数 y = 52x^40 的值", "函数的值为：11417201.8296990867602069733",
     "function_value", "11417201.8296990867602069733", "11417201.82969908676020697334"),
    ("求以下数据的平均值：[80, 89, 58, 99, 56, 20, 77, 61, 42, 28]", "平均值为 61.1", "mean", "61.1", "61.0"),
    ("一个长方形的长为 59 厘米，宽为 97 厘米，请计算其面积。", "面积为 5724 平方厘米", "area", "5724", "5723"),
    ("去年销售额为 82 万元，今年销售额增加了 59%，请计算今年的销售额。", "130.39", "sales", "130.39", "130.38"),
    ("商品原价为 71 元，打折后的价格为 63 元，请计算打折的折扣比例。", "88.73239436619718", "discount",
     "88.73239436619718", "11.267605633802818"),
    ("某物体的密度为 9 克/立方厘米，体积为 3 立方厘米，请计算该物体的质量。", "12 克", "mass", "12", "27"),
    ("将分数 5/6 进行简化。", "最简化的形式为：6/5", "simplify", "6/5", "5/6"),
])
def test_wrong_answer_fails_naming_both_values(problem, wrong, category, given, derived):
    res = synthesize(problem, wrong, category)
    assert not res.verified
    assert given in res.reason and derived in res.reason
    assert res.cot == wrong  # no steps arguing for a number that contradicts the last line


def test_other_failure_reasons():
    assert "restates" in synthesize("计算 1.00 + 2.00 等于多少？", "1.00 + 2.50 = 3.00", "addition").reason
    assert "lowest terms" in synthesize("将分数 4/6 进行简化。", "最简化的形式为：4/6", "simplify").reason
    assert "does not match" in synthesize("计算 1 + 2 + 3 等于多少？", "6", "addition").reason
    assert "no division answer" in synthesize("计算 1.00 / 2.00 等于多少？", "不知道", "division").reason
    assert "division by zero" in synthesize("计算 1.00 / 0.00 等于多少？", "1.00 / 0.00 = 0", "division").reason
    res = synthesize("x", "y", "other")
    assert res == CotResult("y", "", False, "no verifier for category other")
    with pytest.raises(ValueError):
        synthesize("x", "y", "geometry")


def test_numeric_not_textual_comparison():
    # decimal keeps trailing zeros (-2344.70); a solution that drops them is still the same number.
    p = "计算 -1000.00 + -1344.70 等于多少？"
    assert synthesize(p, "-1000.00 + -1344.70 = -2344.70", "addition").verified
    assert synthesize(p, "-1000.00 + -1344.70 = -2344.7", "addition").verified


def test_cot_steps_content():
    mul = synthesize("计算 7904.09 * 9169.76 等于多少？", "7904.09 * 9169.76 = 72478608.3184",
                     "multiplication").cot
    assert "9169.76 = 9000 + 100 + 60 + 9 + 0.7 + 0.06" in mul
    assert "7904.09 × 0.06 = 474.2454" in mul
    lin = synthesize("解方程 53x + -24 = 0", "方程的解为：0.4528301886792453", "linear_equation").cot
    assert lin.split("\n")[:2] == ["移项：53x = 24", "两边同时除以 53：x = 24 / 53"]
    mean = synthesize("求以下数据的平均值：[30, 9, 95, 93]", "平均值为 56.75", "mean").cot
    assert "30 + 9 + 95 + 93 = 227" in mean and "227 / 4 = 56.75" in mean
    power = synthesize("计算 -185.24 的 3 次方？", "-185.24^3 = -6356298.981824", "power").cot
    assert "(-185.24)^2 = (-185.24) × (-185.24) = 34313.8576" in power
    sub = synthesize("计算 -9740.24 - -4497.85 等于多少？", "-9740.24 - -4497.85 = -5242.39", "subtraction").cot
    assert "-9740.24 + 4497.85" in sub and "9740.24 - 4497.85 = 5242.39" in sub


def test_caller_decimal_context_does_not_leak_in():
    cases = [
        ("计算 6122.87 / -6284.25 等于多少？", "6122.87 / -6284.25 = -0.9743199268011298086486056411", "division"),
        ("计算 7904.09 * 9169.76 等于多少？", "7904.09 * 9169.76 = 72478608.3184", "multiplication"),
        ("计算 -9740.24 - -4497.85 等于多少？", "-9740.24 - -4497.85 = -5242.39", "subtraction"),
        ("当 x = 7.59 时，求函数 y = 68x^95 的值", "函数的值为：2.854155448324274205322988364E+85",
         "function_value"),
    ]
    expected = [synthesize(*c) for c in cases]
    with decimal.localcontext() as ctx:
        ctx.prec = 4
        ctx.rounding = decimal.ROUND_DOWN
        got = [synthesize(*c) for c in cases]
    assert got == expected and all(r.verified for r in got)


def test_last_boxed_nesting_and_forms():
    assert last_boxed(r"so $x=\boxed{\frac{1}{2}}$ and not \boxed{3}") == "3"
    assert last_boxed(r"$\boxed{\{1,2\}}$") == r"\{1,2\}"
    assert last_boxed(r"answer \boxed 5$") == "5"
    assert last_boxed(r"\boxed{\frac{1}{2}") is None  # truncated: unbalanced
    assert last_boxed("no box here") is None
    res = synthesize("What is 1+1?", "It is 2.", "english")
    assert not res.verified and "boxed" in res.reason


def test_real_gsm8k_word_problems_verify(shared_file):
    path = shared_file("gsm8k/test.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    results = [synthesize(r["question"], r["answer"], "word_problem") for r in rows]
    assert all(r.verified for r in results)
    first = results[0]
    assert first.answer == "18" and "<<" not in first.cot and first.cot.endswith("#### 18")
    # 80,000+50,000 style thousands separators are removed from the final answer.
    assert results[2].answer == "70000"
    tampered = rows[0]["answer"].replace("<<9*2=18>>", "<<9*2=19>>")
    res = synthesize(rows[0]["question"], tampered, "word_problem")
    assert not res.verified and "9*2" in res.reason and "18" in res.reason and "19" in res.reason


def test_logic_answer_must_be_an_option():
    p = "以下哪项正确？\nA. 甲\nB. 乙\nC. 丙"
    assert synthesize(p, "答案：C", "logic") == CotResult("答案：C", "C", True, "")
    res = synthesize(p, "答案：D", "logic")
    assert not res.verified and "D" in res.reason
