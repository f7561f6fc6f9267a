"""preprocess.classify on the real contest sample and on shapes it must not accept."""
import json
from collections import Counter

import pytest

from preprocess.classify import CATEGORIES, classify

pytestmark = pytest.mark.unit

# Counted by hand on sample_dev.jsonl by replacing every number with N and grouping shapes.
EXPECTED_SAMPLE_COUNTS = {
    "subtraction": 170,
    "multiplication": 161,
    "division": 159,
    "addition": 150,
    "power": 82,
    "linear_equation": 78,
    "square_root": 70,
    "function_value": 39,
    "mean": 36,
    "english": 26,
    "area": 13,
    "sales": 9,
    "discount": 7,
}


@pytest.fixture(scope="module")
def sample_rows(shared_file):
    path = shared_file("ascend2024_math/sample_dev.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_categories_fixed_order():
    assert CATEGORIES == (
        "english", "addition", "subtraction", "multiplication", "division", "square_root", "power",
        "linear_equation", "discount", "mean", "mass", "area", "sales", "simplify", "function_value",
        "logic", "word_problem", "other",
    )


def test_real_sample_counts_per_category(sample_rows):
    counts = Counter(classify(r["problem"], r["solution"]) for r in sample_rows)
    assert dict(counts) == EXPECTED_SAMPLE_COUNTS
    assert sum(counts.values()) == 1000


def test_real_sample_operator_decides_arithmetic_category(sample_rows):
    op_to_cat = {"+": "addition", "-": "subtraction", "*": "multiplication", "/": "division"}
    n = 0
    for r in sample_rows:
        p = r["problem"]
        if p.startswith("计算 ") and p.endswith(" 等于多少？"):
            op = p.split(" ")[2]
            assert classify(p) == op_to_cat[op], p
            n += 1
    assert n == 170 + 161 + 159 + 150


@pytest.mark.parametrize("problem, category", [
    ("计算 -3828.45 + 756.08 等于多少？", "addition"),
    ("计算 -9991.13 + -796.39 等于多少？", "addition"),
    ("计算 -9740.24 - -4497.85 等于多少？", "subtraction"),
    ("计算 7904.09 * 9169.76 等于多少？", "multiplication"),
    ("计算 6122.87 / -6284.25 等于多少？", "division"),
    ("计算 1056.35 的平方根？", "square_root"),
    ("计算 183.94 的 5 次方？", "power"),
    ("解方程 -20x + -26 = 0", "linear_equation"),
    ("当 x = 1.36 时，求函数 y = 52x^40 的值", "function_value"),
    ("求以下数据的平均值：[80, 89, 58, 99, 56, 20, 77, 61, 42, 28]", "mean"),
    ("一个长方形的长为 59 厘米，宽为 97 厘米，请计算其面积。", "area"),
    ("去年销售额为 82 万元，今年销售额增加了 59%，请计算今年的销售额。", "sales"),
    ("商品原价为 71 元，打折后的价格为 63 元，请计算打折的折扣比例。", "discount"),
    ("某物体的密度为 9 克/立方厘米，体积为 3 立方厘米，请计算该物体的质量。", "mass"),
    ("将分数 5/6 进行简化。", "simplify"),
    ("  计算 1.00 + 2.00 等于多少？\n", "addition"),  # surrounding whitespace is not part of the shape
    ("Simplify $\\sqrt{245}$.", "english"),
    ("How many feet long is the shadow of a 20-foot flagpole?", "english"),
])
def test_contest_shapes(problem, category):
    assert classify(problem) == category


@pytest.mark.parametrize("problem", [
    "计算 1 + 2 + 3 等于多少？",           # three operands
    "计算 1056.35 的立方根？",              # cube root is not a contest category
    "解方程 3x - 5 = 0",                    # contest always writes "+ b"
    "解方程 3.5x + 1 = 0",                  # non-integer coefficient
    "计算 1.00  + 2.00 等于多少？",          # double space inside
    "计算 1.00 + 2.00 等于多少?",            # half-width question mark
    "一个正方形的边长为 5 厘米，请计算其面积。",
    "求以下数据的平均值：[1.5, 2]",
    "将分数 -5/6 进行简化。",
    "Solve $x^2=4$ 并写出答案",              # mixed Chinese and LaTeX
    "1 + 1",                                 # no words at all
    "",
])
def test_unseen_shapes_go_to_other(problem):
    assert classify(problem) == "other"


def test_gsm8k_solution_marks_word_problem(shared_file):
    path = shared_file("gsm8k/test.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert Counter(classify(r["question"], r["answer"]) for r in rows) == {"word_problem": 1319}
    # Without its solution a GSM8K question is indistinguishable from a plain-English MATH item.
    assert classify(rows[0]["question"]) == "english"


def test_flattened_tianchi_question_is_logic(shared_file):
    path = shared_file("tianchi_logic/round1_train_data.jsonl")
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    q = first["questions"][0]
    options = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(q["options"]))
    problem = f"{first['problem']}\n{q['question']}\n{options}"
    assert classify(problem) == "logic"
    assert classify(f"{first['problem']}\n{q['question']}") == "other"  # no options listed


def test_non_string_problem_raises():
    with pytest.raises(TypeError):
        classify(None)
