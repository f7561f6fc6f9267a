"""Synthetic corpus in the exact formats of the 2024 Ascend contest (topic 2) training data.

Sources of each rule:
  * category mix: per-category counts of the deduplicated train.json
    (``/work/shared/data/README.md``);
  * text shapes and answer rendering: the real items in
    ``/work/shared/data/ascend2024_math/sample_dev.jsonl`` (every one re-derives exactly with
    the rules below, see tests/preprocess/test_preprocess_cot.py);
  * number ranges: the sample's observed ranges, cross-checked with the deduplicated
    counts: mass has exactly 100 distinct items (density, volume in 1..10), simplify 45
    (numerator 1..9 below a denominator up to 10), and discount 6,275, more than the 4,950
    pairs with a discounted price below the original, so prices are drawn independently
    in 1..100 and a "discount" can be negative.

The generator draws with replacement, like the contest's, so a corpus can contain
duplicates; the pipeline's dedup step removes them.
"""
from __future__ import annotations

import math
import random
import sys
from decimal import Decimal
from typing import Callable

from .atomic import write_jsonl_atomic
from .answer.numeric import contest_context
from preprocess.cli import Parser

# Deduplicated train.json counts per category (README), in the README's order.
CONTEST_MIX: dict[str, int] = {
    "english": 9993,
    "addition": 90113,
    "subtraction": 89366,
    "multiplication": 89902,
    "division": 89966,
    "square_root": 39227,
    "power": 39207,
    "linear_equation": 40080,
    "discount": 6275,
    "mean": 19709,
    "mass": 100,
    "area": 8665,
    "sales": 6266,
    "simplify": 45,
    "function_value": 20028,
}


def _two_dp(rng: random.Random, lo: float, hi: float) -> str:
    text = f"{rng.uniform(lo, hi):.2f}"
    # "%.2f" renders tiny negatives as "-0.00"; the contest's Decimal quantize gives "0.00".
    return "0.00" if text == "-0.00" else text


def _binary(op: str) -> Callable[[random.Random], dict]:
    def make(rng: random.Random) -> dict:
        a = _two_dp(rng, -10000, 10000)
        b = _two_dp(rng, -10000, 10000)
        while op == "/" and Decimal(b) == 0:
            b = _two_dp(rng, -10000, 10000)
        with contest_context():
            x, y = Decimal(a), Decimal(b)
            result = {"+": x + y, "-": x - y, "*": x * y, "/": x / y}[op]
        return {"problem": f"计算 {a} {op} {b} 等于多少？", "solution": f"{a} {op} {b} = {result}"}

    return make


def _square_root(rng: random.Random) -> dict:
    a = _two_dp(rng, 0, 10000)
    with contest_context():
        root = Decimal(a).sqrt()
    return {"problem": f"计算 {a} 的平方根？", "solution": f"√{a} = {root}"}


def _power(rng: random.Random) -> dict:
    n = rng.randint(0, 5)
    a = _two_dp(rng, -1000, 1000)
    while n == 0 and Decimal(a) == 0:  # 0^0 is undefined in decimal
        a = _two_dp(rng, -1000, 1000)
    with contest_context():
        value = Decimal(a) ** n
    return {"problem": f"计算 {a} 的 {n} 次方？", "solution": f"{a}^{n} = {value}"}


def _linear_equation(rng: random.Random) -> dict:
    a = 0
    while a == 0:
        a = rng.randint(-100, 100)
    b = rng.randint(-100, 100)
    return {"problem": f"解方程 {a}x + {b} = 0", "solution": f"方程的解为：{-b / a}"}


def _function_value(rng: random.Random) -> dict:
    x = _two_dp(rng, 0.1, 10.0)
    a, n = rng.randint(1, 100), rng.randint(1, 100)
    with contest_context():
        y = Decimal(a) * Decimal(x) ** n
    return {"problem": f"当 x = {x} 时，求函数 y = {a}x^{n} 的值", "solution": f"函数的值为：{y}"}


def _mean(rng: random.Random) -> dict:
    xs = [rng.randint(1, 100) for _ in range(rng.randint(3, 10))]
    return {"problem": f"求以下数据的平均值：{xs}", "solution": f"平均值为 {sum(xs) / len(xs)}"}


def _area(rng: random.Random) -> dict:
    a, b = rng.randint(1, 100), rng.randint(1, 100)
    return {
        "problem": f"一个长方形的长为 {a} 厘米，宽为 {b} 厘米，请计算其面积。",
        "solution": f"面积为 {a * b} 平方厘米",
    }


def _sales(rng: random.Random) -> dict:
    a, b = rng.randint(1, 100), rng.randint(1, 100)
    return {
        "problem": f"去年销售额为 {a} 万元，今年销售额增加了 {b}%，请计算今年的销售额。",
        # Unrounded float: the real sample has 12, 77% -> 21.240000000000002.
        "solution": f"{a * (1 + b / 100)}",
    }


def _discount(rng: random.Random) -> dict:
    a, b = rng.randint(1, 100), rng.randint(1, 100)
    return {
        "problem": f"商品原价为 {a} 元，打折后的价格为 {b} 元，请计算打折的折扣比例。",
        "solution": f"{(a - b) / a * 100}",
    }


def _mass(rng: random.Random) -> dict:
    d, v = rng.randint(1, 10), rng.randint(1, 10)
    return {
        "problem": f"某物体的密度为 {d} 克/立方厘米，体积为 {v} 立方厘米，请计算该物体的质量。",
        "solution": f"{d * v} 克",
    }


def _simplify(rng: random.Random) -> dict:
    num = rng.randint(1, 9)
    den = rng.randint(num + 1, 10)
    g = math.gcd(num, den)
    return {"problem": f"将分数 {num}/{den} 进行简化。", "solution": f"最简化的形式为：{num // g}/{den // g}"}


# English (Hendrycks-MATH style): a few LaTeX templates with a short worked solution.
def _en_order_of_operations(rng: random.Random) -> dict:
    a, b, c = rng.randint(2, 50), rng.randint(2, 12), rng.randint(2, 12)
    return {
        "problem": f"What is the value of ${a} + {b} \\cdot {c}$?",
        "solution": f"Multiplication comes first: ${b} \\cdot {c} = {b * c}$, "
        f"so ${a} + {b * c} = \\boxed{{{a + b * c}}}$.",
    }


def _en_linear(rng: random.Random) -> dict:
    a, x, b = rng.randint(2, 12), rng.randint(-20, 20), rng.randint(-30, 30)
    c = a * x + b
    sign, mag = ("+", b) if b >= 0 else ("-", -b)
    return {
        "problem": f"Solve for $x$: ${a}x {sign} {mag} = {c}$.",
        "solution": f"{'Subtracting' if b >= 0 else 'Adding'} ${mag}$ {'from' if b >= 0 else 'to'} both sides "
        f"gives ${a}x = {c - b}$, so $x = \\frac{{{c - b}}}{{{a}}} = \\boxed{{{x}}}$.",
    }


def _en_binomial(rng: random.Random) -> dict:
    n = rng.randint(4, 12)
    k = rng.randint(1, n - 1)
    return {
        "problem": f"Compute $\\dbinom{{{n}}}{{{k}}}$.",
        "solution": f"$\\dbinom{{{n}}}{{{k}}} = \\frac{{{n}!}}{{{k}!\\,{n - k}!}} = \\boxed{{{math.comb(n, k)}}}$.",
    }


def _en_gcd(rng: random.Random) -> dict:
    g = rng.randint(2, 30)
    p, q = rng.randint(2, 40), rng.randint(2, 40)
    a, b = g * p, g * q
    return {
        "problem": f"What is the greatest common divisor of ${a}$ and ${b}$?",
        "solution": f"By the Euclidean algorithm, $\\gcd({a}, {b}) = \\boxed{{{math.gcd(a, b)}}}$.",
    }


def _en_quadratic_value(rng: random.Random) -> dict:
    a, b, c, k = rng.randint(1, 9), rng.randint(-9, 9), rng.randint(-9, 9), rng.randint(-5, 5)
    value = a * k * k + b * k + c
    return {
        "problem": f"If $f(x) = {a}x^2 + ({b})x + ({c})$, what is $f({k})$?",
        "solution": f"Substituting, $f({k}) = {a}\\cdot({k})^2 + ({b})\\cdot({k}) + ({c}) "
        f"= {a * k * k} + ({b * k}) + ({c}) = \\boxed{{{value}}}$.",
    }


def _en_fraction_sum(rng: random.Random) -> dict:
    a, b, c, d = rng.randint(1, 9), rng.randint(2, 12), rng.randint(1, 9), rng.randint(2, 12)
    num, den = a * d + c * b, b * d
    g = math.gcd(num, den)
    num, den = num // g, den // g
    answer = str(num) if den == 1 else f"\\frac{{{num}}}{{{den}}}"
    return {
        "problem": f"Express $\\frac{{{a}}}{{{b}}} + \\frac{{{c}}}{{{d}}}$ as a common fraction in simplest form.",
        "solution": f"Over the common denominator ${b * d}$ the sum is "
        f"$\\frac{{{a * d + c * b}}}{{{b * d}}} = \\boxed{{{answer}}}$.",
    }


_ENGLISH_TEMPLATES = (
    _en_order_of_operations,
    _en_linear,
    _en_binomial,
    _en_gcd,
    _en_quadratic_value,
    _en_fraction_sum,
)


def _english(rng: random.Random) -> dict:
    return rng.choice(_ENGLISH_TEMPLATES)(rng)


GENERATORS: dict[str, Callable[[random.Random], dict]] = {
    "english": _english,
    "addition": _binary("+"),
    "subtraction": _binary("-"),
    "multiplication": _binary("*"),
    "division": _binary("/"),
    "square_root": _square_root,
    "power": _power,
    "linear_equation": _linear_equation,
    "discount": _discount,
    "mean": _mean,
    "mass": _mass,
    "area": _area,
    "sales": _sales,
    "simplify": _simplify,
    "function_value": _function_value,
}


def category_counts(n: int) -> dict[str, int]:
    """How many items of each category a corpus of ``n`` gets.

    Proportional to ``CONTEST_MIX`` (largest remainder), after a floor per category so
    rare categories still appear: 3 each for n >= 200, 1 each for n >= 15, none below.

    Raises:
        ValueError: ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    floor = 3 if n >= 200 else 1 if n >= len(CONTEST_MIX) else 0
    counts = {c: floor for c in CONTEST_MIX}
    rest = n - floor * len(CONTEST_MIX)
    total = sum(CONTEST_MIX.values())
    shares = {c: rest * w / total for c, w in CONTEST_MIX.items()}
    for c, s in shares.items():
        counts[c] += int(s)
    left = n - sum(counts.values())
    order = sorted(CONTEST_MIX, key=lambda c: (-(shares[c] - int(shares[c])), list(CONTEST_MIX).index(c)))
    for c in order[:left]:
        counts[c] += 1
    return counts


def generate_corpus(n: int, seed: int) -> list[dict]:
    """Return ``n`` contest-format items ``{"problem": str, "solution": str}``.

    The category sequence is shuffled, so categories are interleaved; the same ``n`` and
    ``seed`` always give the same list (one ``random.Random(seed)`` drives everything).

    Raises:
        ValueError: ``n`` is negative.
    """
    return [item for _, item in generate_labelled(n, seed)]


def generate_labelled(n: int, seed: int) -> list[tuple[str, dict]]:
    """Like :func:`generate_corpus` but pairs each item with the category it was made for."""
    rng = random.Random(seed)
    plan = [c for c, k in category_counts(n).items() for _ in range(k)]
    rng.shuffle(plan)
    return [(c, GENERATORS[c](rng)) for c in plan]


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m preprocess.synthesize",
        description="Write a synthetic corpus in the 2024 Ascend contest's JSONL format "
        '({"problem", "solution"} per line), covering all 15 contest categories.',
    )
    parser.add_argument("--n", type=int, required=True, help="number of items to generate (>= 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same file (default 0)")
    parser.add_argument("--output", required=True, help="JSONL file to write (replaced atomically)")
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error("--n must be >= 0")
    items = generate_corpus(args.n, args.seed)
    write_jsonl_atomic(args.output, items)
    print(f"wrote {len(items)} items to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
