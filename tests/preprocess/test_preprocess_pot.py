"""preprocess.answer.pot (the PoT language and its safe evaluator) and preprocess.pot_targets."""
import json
import re
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from preprocess.classify import classify
from preprocess.config import PreprocessConfig
from preprocess.cot import synthesize
from preprocess.pipeline import run
from preprocess.answer.pot import MAX_DEPTH, MAX_EXPONENT, PotError, evaluate, extract_expression, render
from preprocess.pot_targets import POT_CATEGORIES, pot_target

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("expr, value", [
    ("-3828.45 - 756.08", "-4584.53"),
    ("7904.09 * 9169.76", "72478608.3184"),
    ("6122.87 / (-6284.25)", "-0.9743199268011298086486056411"),  # 28 digits, as the contest
    ("sqrt(1056.35)", "32.50153842512689429138897596"),
    ("183.94**5", "210562442992.2269624224"),
    ("52 * 1.36**40", "11417201.82969908676020697334"),          # Decimal(a) * x**n, operation by operation
    ("68 * 7.59**95", "2.854155448324274205322988364E+85"),
    ("(75 + 23 + 58 + 18 + 53 + 98 + 30 + 83) / 8", "54.75"),
    ("82 * (1 + 59 / 100)", "130.38"),
    ("(-185.24)**3", "-6356298.981824"),
    ("frac(10, 12)", "5/6"),
    ("frac(1, 2) + frac(1, 3)", "5/6"),
    ("frac(6, 3)", "2"),
    ("frac(1, 2) + 0.25", "0.75"),   # a fraction mixed with a decimal becomes a decimal
    ("solve(-39*x + 20 = 0)", "0.5128205128205128205128205128"),
    ("solve(3*x + 5 = 20)", "5"),
    ("solve(2*(x + 1) = x/3)", "-1.2"),
    (" 2.5E+3 * 2 。", None),  # a trailing 。 is not part of the language
])
def test_values(expr, value):
    if value is None:
        with pytest.raises(PotError):
            evaluate(expr)
    else:
        assert render(evaluate(expr)) == value


def test_precedence_of_unary_minus_and_power():
    # Python's precedence: -a**n is -(a**n); the contest's power of a negative base needs (-a)**n.
    assert evaluate("-719.49**2") == Decimal("-517665.8601")
    assert evaluate("(-719.49)**2") == Decimal("517665.8601")
    assert evaluate("(-719.49)**0") == 1 and evaluate("-719.49**0") == -1


def test_fractions_stay_exact():
    assert evaluate("frac(1, 3) * 3") == 1 and isinstance(evaluate("frac(1, 3) * 3"), Fraction)
    assert evaluate("frac(-4, 6)") == Fraction(-2, 3)


@pytest.mark.parametrize("expr, stage, reason", [
    ("__import__('os').system('true')", "parse", "not allowed"),
    ("open('/etc/passwd')", "parse", "call of 'open' is not allowed"),
    ("print(1)", "parse", "call of 'print'"),
    ("(1).real", "parse", "Attribute"),
    ("x", "parse", "name 'x' is not allowed"),
    ("y + 1", "parse", "name 'y'"),
    ("solve(y = 1)", "parse", "name 'y'"),
    ("[1, 2][0]", "parse", "not allowed"),
    ("'12'", "parse", "not a number"),
    ("True + 1", "parse", "not a number"),
    ("lambda: 1", "parse", "Lambda"),
    ("1 if 1 else 2", "parse", "IfExp"),
    ("1 < 2", "parse", "Compare"),
    ("7 // 2", "parse", "FloorDiv"),
    ("7 % 2", "parse", "Mod"),
    ("~7", "parse", "Invert"),
    ("2 ^ 3", "parse", "write powers as a\\*\\*n"),
    ("sqrt(x=4)", "parse", "plain argument"),
    ("sqrt(*[4])", "parse", "plain argument"),
    ("frac(1)", "parse", "2 plain argument"),
    ("9**9**9", "evaluate", "exponent 387420489 exceeds 1000"),
    (f"2**{MAX_EXPONENT + 1}", "evaluate", "exceeds"),
    ("2**0.5", "evaluate", "not an integer"),
    ("frac(3, 7)**999 * frac(3, 7)**999", "evaluate", "fraction too large"),
    ("frac(1000, 7)**1000", "evaluate", "fraction power too large"),
    ("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1), "parse", "nested more than"),
    ("-" * 100 + "1", "parse", "nested more than"),
    ("1" * 41, "parse", "41 digits"),
    ("1e999999", "parse", "not written as digits"),
    ("+".join(["1"] * 300), "parse", "more than 500"),
    ("1 + ", "parse", "not an expression"),
    ("", "parse", "empty"),
    ("1/0", "evaluate", "division by zero"),
    ("frac(1, 2) / frac(0, 1)", "evaluate", "division by zero"),
    ("frac(1, 0)", "evaluate", "denominator is zero"),
    ("sqrt(-4)", "evaluate", "negative"),
    ("0**0", "evaluate", "undefined"),
    ("(9.9**999)**999 * (9.9**999)**999", "evaluate", "too large for the 28-digit context"),
    ("solve(x*x = 1)", "parse", "x is multiplied by x"),
    ("solve(1/x = 1)", "parse", "division by an expression in x"),
    ("solve(x**2 = 1)", "parse", "x in a power"),
    ("solve(sqrt(x) = 1)", "parse", "sqrt"),
    ("solve(x = x + 1)", "evaluate", "no unique solution"),
    ("solve(x = 1 = 2)", "parse", "single '='"),
    ("solve(x == 1)", "parse", "single '='"),
])
def test_refusals_name_their_reason(expr, stage, reason):
    with pytest.raises(PotError) as info:
        evaluate(expr)
    assert info.value.stage == stage
    assert re.search(reason, str(info.value)), str(info.value)


def test_huge_but_legal_results_stay_in_the_28_digit_context():
    assert render(evaluate("10.0**999 * 10.0**999")) == "1.000000000000000000000000000E+1998"


def test_extract_expression():
    assert extract_expression("两数相加。\n算式：1 + 2") == "1 + 2"
    assert extract_expression("算式: 1 + 2。\n") == "1 + 2"
    assert extract_expression("算式：`sqrt(2)`.\n说明") == "sqrt(2)"
    assert extract_expression("算式：1\n算式：2 * 3") == "2 * 3"
    assert extract_expression("1 + 2 = 3") is None and extract_expression(None) is None
    assert extract_expression("算式：") is None


def test_targets_on_templates_without_sample_items():
    assert pot_target("将分数 10/12 进行简化。", "5/6", "simplify") == "约分到最简分数。\n算式：frac(10, 12)"
    assert pot_target("某物体的密度为 3 克/立方厘米，体积为 7 立方厘米，请计算该物体的质量。", "21", "mass") \
        == "质量 = 密度 × 体积。\n算式：3 * 7"
    assert pot_target("计算 -719.49 的 2 次方？", "517665.8601", "power").endswith("算式：(-719.49)**2")


def test_targets_are_checked_against_the_answer():
    with pytest.raises(ValueError, match="gives 5/6, not the answer 10/12"):
        pot_target("将分数 10/12 进行简化。", "10/12", "simplify")
    with pytest.raises(ValueError, match="not the answer 767.95"):
        pot_target("计算 9690.26 - 8922.32 等于多少？", "767.95", "subtraction")
    with pytest.raises(ValueError, match="does not match the addition format"):
        pot_target("计算 1 加 2", "3", "addition")
    with pytest.raises(ValueError, match="no PoT target"):
        pot_target("What is 1 + 1?", "2", "english")


def test_every_real_sample_item_gets_a_verified_target(shared_file):
    path = shared_file("ascend2024_math/sample_dev.jsonl")
    counts = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        category = classify(row["problem"], row["solution"])
        if category not in POT_CATEGORIES:
            continue
        result = synthesize(row["problem"], row["solution"], category)
        assert result.verified, result.reason
        target = pot_target(row["problem"], result.answer, category)  # raises unless it evaluates to the answer
        assert target.count("\n") == 1 and len(target) < 200
        counts[category] += 1
    assert sum(counts.values()) == 974 and len(counts) == 12


def test_pipeline_target_style_pot(tmp_path):
    rows = [{"problem": "计算 9690.26 - 8922.32 等于多少？", "solution": "9690.26 - 8922.32 = 767.94"},
            {"problem": "解方程 -39x + 20 = 0", "solution": "方程的解为：0.5128205128205128"},
            {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$."}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    report = run([str(src)], tmp_path / "out", progress=False, config=PreprocessConfig(target_style="pot"))
    assert report["settings"]["target_style"] == "pot" and report["verified"] == 3
    conv = json.loads((tmp_path / "out" / "conversations.json").read_text(encoding="utf-8"))
    answers = [c["conversations"][1]["value"] for c in conv]
    assert answers == ["被减数减去减数。\n算式：9690.26 - 8922.32",
                       "解一元一次方程。\n算式：solve(-39*x + 20 = 0)",
                       "It is $\\boxed{2}$."]


def test_pipeline_target_style_pot_cot_keeps_the_expression_as_fallback(tmp_path):
    """pot_cot: the expression lines, then the steps recipe (re-checked line by line); the
    expression alone is the record's fallback_conversations; English keeps its CoT, no fallback."""
    rows = [{"problem": "计算 9690.26 - 8922.32 等于多少？", "solution": "9690.26 - 8922.32 = 767.94"},
            {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$."}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    run([str(src)], tmp_path / "out", progress=False, config=PreprocessConfig(target_style="pot_cot"))
    conv = json.loads((tmp_path / "out" / "conversations.json").read_text(encoding="utf-8"))
    steps = synthesize(rows[0]["problem"], rows[0]["solution"], "subtraction", "steps").cot
    assert conv[0]["conversations"][1]["value"] == f"被减数减去减数。\n算式：9690.26 - 8922.32\n{steps}"
    assert steps.endswith("=767.94") and extract_expression(conv[0]["conversations"][1]["value"]) == \
        "9690.26 - 8922.32"
    assert conv[0]["fallback_conversations"] == [conv[0]["conversations"][0],
                                                 {"from": "gpt", "value": "被减数减去减数。\n算式：9690.26 - 8922.32"}]
    assert "fallback_conversations" not in conv[1] and conv[1]["conversations"][1]["value"] == rows[1]["solution"]


def test_config_target_style():
    assert PreprocessConfig().target_style == "pot_cot"
    with pytest.raises(ValueError, match="target_style must be one of"):
        PreprocessConfig().with_overrides(target_style="tir")
    with pytest.raises(ValueError, match="leave rounding empty"):
        PreprocessConfig(rounding={"division": 2}).with_overrides(target_style="pot")


def test_help_states_every_default_and_pot_cot_is_the_one_default():
    from preprocess.__main__ import build_parser

    parser = build_parser()
    text = " ".join(parser.format_help().split())
    assert "(default pot_cot)" in text and "(default steps)" in text and "(default plain)" in text
    required_or_flags = {"--input", "--output_dir", "--config", "--no_progress", "--verbose", "--help"}
    for action in parser._actions:  # every optional setting says what it defaults to
        if not required_or_flags & set(action.option_strings):
            assert "(default" in action.help, action.option_strings
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8").split())
    assert f"default `{PreprocessConfig().target_style}`" in readme
