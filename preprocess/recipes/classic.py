"""The re-derivation of every computational answer; its lines are the ``classic`` target.

For each of the 14 computational categories a builder re-derives the answer from the problem text
(the contest's rules: :mod:`preprocess.cot`), raises :class:`~preprocess.recipes.rederive.Mismatch`
when the given answer disagrees, and returns the short Chinese explanation that precedes the given
solution line in a ``classic`` target. Every style runs its builder first, as the verifier; the recipe
styles (``steps``, ``digits``) then write their own lines.
"""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Callable

from ..answer.numeric import contest_context, dec, negate_literal, paren, plain
from .rederive import Mismatch, check_close, check_echo, check_equal, sympy_module


def _sign_word(negative: bool) -> str:
    return "负" if negative else "正"


def _signed_sum_steps(a_lit: str, b_lit: str, total: Decimal) -> list[str]:
    a, b = dec(a_lit), dec(b_lit)
    if a == 0 or b == 0:
        return [f"有一个加数是 0，和等于另一个加数：{plain(total)}。"]
    if (a < 0) == (b < 0):
        mag = abs(a) + abs(b)
        return [
            f"两数同号，绝对值相加：{plain(abs(a))} + {plain(abs(b))} = {plain(mag)}。",
            f"结果取它们共同的符号（{_sign_word(a < 0)}），得 {plain(total)}。",
        ]
    big, small = (a, b) if abs(a) >= abs(b) else (b, a)
    if abs(a) == abs(b):
        return [f"两数互为相反数，和为 {plain(total)}。"]
    return [
        f"两数异号，用较大的绝对值减去较小的绝对值：{plain(abs(big))} - {plain(abs(small))} = "
        f"{plain(abs(big) - abs(small))}。",
        f"结果取绝对值较大的数 {plain(big)} 的符号，得 {plain(total)}。",
    ]


def _addition(m, answer, sm):
    check_echo(sm, a=m["a"], b=m["b"])
    with contest_context():
        total = dec(m["a"]) + dec(m["b"])
    check_equal(answer, total)
    return [f"计算 {m['a']} + {paren(m['b'])}。", *_signed_sum_steps(m["a"], m["b"], total)]


def _subtraction(m, answer, sm):
    check_echo(sm, a=m["a"], b=m["b"])
    with contest_context():
        total = dec(m["a"]) - dec(m["b"])
    check_equal(answer, total)
    neg_b = negate_literal(m["b"])
    return [
        f"减去一个数等于加上它的相反数：{m['a']} - {paren(m['b'])} = {m['a']} + {paren(neg_b)}。",
        *_signed_sum_steps(m["a"], neg_b, total),
    ]


def _place_values(literal: str) -> list[str]:
    """Split a non-negative decimal literal into its nonzero place values (9169.76 -> 9000, 100, ...)."""
    int_part, _, frac_part = literal.lstrip("-").partition(".")
    int_part = int_part.lstrip("0")
    parts = [d + "0" * (len(int_part) - i - 1) for i, d in enumerate(int_part) if d != "0"]
    parts += ["0." + "0" * i + d for i, d in enumerate(frac_part) if d != "0"]
    return parts


def _multiplication(m, answer, sm):
    check_echo(sm, a=m["a"], b=m["b"])
    a_lit, b_lit = m["a"], m["b"]
    with contest_context():
        product = dec(a_lit) * dec(b_lit)
        check_equal(answer, product)
        abs_a = abs(dec(a_lit))
        parts = _place_values(b_lit)
        negative = (dec(a_lit) < 0) != (dec(b_lit) < 0)
        if not parts or abs_a == 0:
            return [f"有一个因数是 0，积为 {plain(product)}。"]
        partials = [abs_a * dec(p) for p in parts]
        running = sum(partials, Decimal(0))
    a_abs_lit, b_abs_lit = a_lit.lstrip("-"), b_lit.lstrip("-")
    lines = ["先按绝对值相乘，再确定符号。"]
    if len(parts) > 1:
        lines.append(f"把 {b_abs_lit} 按数位拆开：{b_abs_lit} = {' + '.join(parts)}")
    for part, partial in zip(parts, partials):
        lines.append(f"{a_abs_lit} × {part} = {plain(partial)}")
    if len(parts) > 1:
        lines.append(f"部分积相加：{' + '.join(plain(p) for p in partials)} = {plain(running)}")
    sign = "异号，积为负" if negative and product != 0 else "同号，积为正" if product != 0 else "积为 0"
    lines.append(f"两个因数{sign}：{plain(product)}")
    return lines


def _division(m, answer, sm):
    check_echo(sm, a=m["a"], b=m["b"])
    a_lit, b_lit = m["a"], m["b"]
    a, b = dec(a_lit), dec(b_lit)
    if b == 0:
        raise Mismatch("division by zero in the problem")
    with contest_context():
        quotient = a / b
        magnitude = abs(a) / abs(b)
    check_equal(answer, quotient)
    negative = (a < 0) != (b < 0) and a != 0
    lines = [f"先定符号：被除数与除数{'异号，商为负' if negative else '同号（或被除数为 0），商不为负'}。"]
    scale = max(-a.as_tuple().exponent, -b.as_tuple().exponent, 0)
    ia, ib = int(abs(a).scaleb(scale)), int(abs(b).scaleb(scale))
    if scale:
        lines.append(f"两数同乘 {10 ** scale}，化为整数相除：{ia} ÷ {ib}。")
    q, r = divmod(ia, ib)
    lines.append(f"{ia} ÷ {ib} = {q} …… {r}，商的整数部分是 {q}。")
    lines.append(f"继续除下去，保留 28 位有效数字：{plain(magnitude)}")
    return lines


def _square_root(m, answer, sm):
    check_echo(sm, a=m["a"])
    a = dec(m["a"])
    if a < 0:
        raise Mismatch(f"square root of a negative number {m['a']}")
    with contest_context():
        root = a.sqrt()
    check_equal(answer, root)
    n = math.isqrt(int(a))
    return [
        f"因为 {n}² = {n * n}，{n + 1}² = {(n + 1) ** 2}，且 {n * n} ≤ {m['a']} < {(n + 1) ** 2}，"
        f"所以 √{m['a']} 在 {n} 和 {n + 1} 之间。",
        f"用牛顿迭代 x ← (x + {m['a']} / x) / 2 逐步逼近，保留 28 位有效数字得 {plain(root)}。",
    ]


def _power(m, answer, sm):
    check_echo(sm, a=m["a"], n=m["n"])
    a_lit, n = m["a"], int(m["n"])
    with contest_context():
        a = dec(a_lit)
        if a == 0 and n == 0:
            raise Mismatch("0 to the power 0 is undefined")
        value = a**n
        check_equal(answer, value)
        base = paren(a_lit)
        if n == 0:
            return ["任何非零数的 0 次方都等于 1。"]
        lines = []
        if a < 0:
            lines.append(f"底数是负数，按 {base}^{n} 计算；指数 {n} 是{'奇数，结果为负' if n % 2 else '偶数，结果为正'}。")
        if n > 6:
            # Long chains of rounded products could drift from a**n in the last digit.
            lines.append(f"按 28 位有效数字计算 {base}^{n} = {plain(value)}")
            return lines
        running = a
        lines.append(f"{base}^1 = {a_lit}")
        for k in range(2, n + 1):
            nxt = running * a
            shown = plain(value) if k == n else plain(nxt)
            lines.append(f"{base}^{k} = {paren(plain(running))} × {base} = {shown}")
            running = nxt
    return lines


def _linear_equation(m, answer, sm):
    a, b = int(m["a"]), int(m["b"])
    if a == 0:
        raise Mismatch("coefficient of x is 0; the equation has no unique solution")
    x = -b / a  # contest rule: Python float division; sympy below is the exact cross-check
    sp = sympy_module()
    exact = sp.Rational(-b, a)
    # Exact root check, then the float must be that root correctly rounded.
    if sp.Integer(a) * exact + b != 0 or float(exact) != x:
        raise Mismatch(f"float -b/a = {x!r} disagrees with sympy's exact solution {exact}")
    check_close(answer, Fraction(-b, a), x)
    return [
        f"移项：{a}x = {-b}",
        f"两边同时除以 {a}：x = {-b} / {paren(str(a))}",
        f"x = {answer}",
    ]


def _function_value(m, answer, sm):
    x_lit, a, n = m["x"], int(m["a"]), int(m["n"])
    with contest_context():
        x = dec(x_lit)
        if x == 0 and n == 0:
            raise Mismatch("0 to the power 0 is undefined")
        xn = x**n
        y = Decimal(a) * xn
    sp = sympy_module()
    exact = sp.Integer(a) * sp.Rational(x_lit) ** n
    if exact != 0 and abs(sp.Rational(str(y)) / exact - 1) > sp.Rational(1, 10**25):
        raise Mismatch(f"decimal value {y} disagrees with sympy's exact value {sp.N(exact, 30)}")
    check_equal(answer, y)
    return [
        f"把 x = {x_lit} 代入 y = {a}x^{n}。",
        f"先算 {x_lit}^{n} = {xn}",
        f"再乘系数：{a} × {xn} = {y}",
    ]


def _mean(m, answer, sm):
    xs = [int(t) for t in m["xs"].split(", ")]
    total = sum(xs)
    # contest rule: float sum/len, which is why an integer mean prints as 61.0
    check_close(answer, Fraction(total, len(xs)), total / len(xs))
    return [
        f"数据共 {len(xs)} 个。",
        f"求和：{' + '.join(str(v) for v in xs)} = {total}",
        f"平均值 = {total} / {len(xs)} = {answer}",
    ]


def _area(m, answer, sm):
    a, b = int(m["a"]), int(m["b"])
    check_equal(answer, Decimal(a * b))
    return [f"长方形面积 = 长 × 宽 = {a} × {b} = {a * b}（平方厘米）"]


def _mass(m, answer, sm):
    a, b = int(m["a"]), int(m["b"])
    check_equal(answer, Decimal(a * b))
    return [f"质量 = 密度 × 体积 = {a} × {b} = {a * b}（克）"]


def _sales(m, answer, sm):
    a, b = int(m["a"]), int(m["b"])
    # contest rule (see module doc): unrounded float a * (1 + b/100)
    check_close(answer, Fraction(a * (100 + b), 100), a * (1 + b / 100))
    factor = Decimal(100 + b) / 100
    return [
        f"今年销售额 = 去年销售额 × (1 + 增长率) = {a} × (1 + {b}%) = {a} × {plain(factor)}",
        f"= {answer}（万元）",
    ]


def _discount(m, answer, sm):
    a, b = int(m["a"]), int(m["b"])
    if a == 0:
        raise Mismatch("original price is 0")
    # contest rule: float (a - b) / a * 100; b > a (a price rise) gives a negative ratio
    check_close(answer, Fraction((a - b) * 100, a), (a - b) / a * 100)
    return [
        f"折扣比例 = (原价 - 现价) / 原价 × 100 = ({a} - {b}) / {a} × 100",
        f"= {a - b} / {a} × 100 = {answer}",
    ]


def _simplify(m, answer, sm):
    num, den = int(m["a"]), int(m["b"])
    if den == 0:
        raise Mismatch("denominator is 0")
    exact = sympy_module().Rational(num, den)
    g_num, _, g_den = answer.partition("/")
    given = Fraction(int(g_num), int(g_den)) if int(g_den) else None
    if given is None or given != Fraction(int(exact.p), int(exact.q)):
        raise Mismatch(f"solution answer {answer} != re-derived {exact.p}/{exact.q}")
    if math.gcd(int(g_num), int(g_den)) != 1:
        raise Mismatch(f"solution answer {answer} is not in lowest terms ({exact.p}/{exact.q})")
    g = math.gcd(num, den)
    return [
        f"分子 {num} 与分母 {den} 的最大公约数是 {g}。",
        f"分子分母同时除以 {g}：{num} ÷ {g} = {num // g}，{den} ÷ {g} = {den // g}。",
    ]


# category -> builder(problem match, given answer, solution match or None) -> the lines before the solution line
BUILDERS: dict[str, Callable[..., list[str]]] = {
    "addition": _addition,
    "subtraction": _subtraction,
    "multiplication": _multiplication,
    "division": _division,
    "square_root": _square_root,
    "power": _power,
    "linear_equation": _linear_equation,
    "function_value": _function_value,
    "mean": _mean,
    "area": _area,
    "mass": _mass,
    "sales": _sales,
    "discount": _discount,
    "simplify": _simplify,
}
