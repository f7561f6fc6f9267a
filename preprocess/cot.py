"""Chain-of-thought synthesis with independent verification of the reference answer.

For every computational category the answer is re-derived from the *problem text alone*,
with the same arithmetic the contest generator used (``/work/shared/data/README.md``):
``decimal`` at its default 28-digit context for the four operations, square root, power
and function value (compared exactly, as ``Decimal`` values, so ``-2344.7`` equals
``-2344.70``). Linear equation (``-b/a``), mean (``sum/len``), discount (``(a-b)/a*100``)
and sales were rendered from Python ``float``s: there the given answer is compared with the
exact rational value and must agree to float precision (relative 2**-50). Sales is not
rounded: the real sample has ``12``, ``77%`` -> ``21.240000000000002``, which is
``repr(12 * (1 + 77/100))``; ``a + a*b/100`` gives the same 9 sample answers, so the check
accepts any float evaluation order. sympy independently re-checks linear_equation,
simplify and function_value with exact rationals.
 A verified item gets a short Chinese step-by-step
CoT whose last line is exactly the given solution, so the CoT's final number is the
reference answer; an unverified item's ``cot`` is the bare solution, so no training text
ever argues for a number that disagrees with its last line.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache
from typing import Callable

from .arith import eval_arithmetic
from .classify import CATEGORIES, PATTERNS, option_labels
from .answer.boxed import gsm8k_final, last_boxed
from .answer.numeric import NUMBER_RE, contest_context, dec, float_close, last_number, negate_literal, paren, plain
from .recipes import STEP_STYLES, STYLES, StepError


@dataclass(frozen=True)
class CotResult:
    """Outcome of :func:`synthesize`.

    Attributes:
        cot: the training target. Computational categories: step-by-step text whose last
            line is the given solution (stripped). english/logic/other and every failure:
            the solution unchanged. word_problem: the solution without GSM8K's
            ``<<expr=value>>`` calculator annotations.
        answer: the final answer parsed from the given solution, as a plain string
            ("-3072.37", "5/6", "A", the boxed LaTeX for english); "" when none was found.
        verified: True when the given answer agrees with the re-derived one.
        reason: "" when verified, otherwise why not (names both values on a mismatch).
    """

    cot: str
    answer: str
    verified: bool
    reason: str = ""


class _Mismatch(Exception):
    """The solution's answer is missing, malformed or disagrees with the re-derivation."""


# Solution shapes per category; a solution that misses its shape falls back to its last number.
_N = NUMBER_RE
_SOLUTION_PATTERNS: dict[str, re.Pattern[str]] = {
    "addition": re.compile(rf"(?P<a>{_N}) \+ (?P<b>{_N}) = (?P<ans>{_N})"),
    "subtraction": re.compile(rf"(?P<a>{_N}) - (?P<b>{_N}) = (?P<ans>{_N})"),
    "multiplication": re.compile(rf"(?P<a>{_N}) \* (?P<b>{_N}) = (?P<ans>{_N})"),
    "division": re.compile(rf"(?P<a>{_N}) / (?P<b>{_N}) = (?P<ans>{_N})"),
    "square_root": re.compile(rf"√(?P<a>{_N}) = (?P<ans>{_N})"),
    "power": re.compile(rf"(?P<a>{_N})\^(?P<n>\d+) = (?P<ans>{_N})"),
    "linear_equation": re.compile(rf"方程的解为：(?P<ans>{_N})"),
    "function_value": re.compile(rf"函数的值为：(?P<ans>{_N})"),
    "mean": re.compile(rf"平均值为 (?P<ans>{_N})"),
    "area": re.compile(rf"面积为 (?P<ans>{_N}) 平方厘米"),
    "mass": re.compile(rf"(?P<ans>{_N}) 克"),
    "sales": re.compile(rf"(?P<ans>{_N})"),
    "discount": re.compile(rf"(?P<ans>{_N})"),
    "simplify": re.compile(r"最简化的形式为：(?P<ans>-?\d+/\d+)"),
}
_FRACTION = re.compile(r"(-?\d+)\s*/\s*(\d+)(?!.*\d)", re.S)


def synthesize(problem: str, solution: str, category: str, style: str = "classic") -> CotResult:
    """Verify ``solution`` against ``problem`` and build the CoT training text.

    Args:
        problem: question text (contest format for the computational categories).
        solution: reference solution as given in the data.
        category: one of ``classify.CATEGORIES`` (normally ``classify(problem, solution)``).
        style: ``recipes.STYLES``: ``classic`` (the Chinese explanation ending with the solution
            line), ``steps`` or ``digits`` (``preprocess.recipes``: every line a claim that is re-computed;
            an item whose recipe fails that check is returned unverified with the failing line).
            Only the 14 computational categories have styles; the others are the same in both.

    Returns:
        A :class:`CotResult`; ``verified`` is False (with ``reason``) when the problem does not
        have the category's shape, the solution has no parsable answer, or the numbers differ.
        ``other`` is never verified (reason "no verifier for category other").

    Raises:
        ValueError: ``category`` is not in ``CATEGORIES`` or ``style`` not in ``recipes.STYLES``.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    if category == "other":
        return CotResult(solution, last_number(solution) or "", False, "no verifier for category other")
    if category == "english":
        return _english(solution)
    if category == "word_problem":
        return _word_problem(solution)
    if category == "logic":
        return _logic(problem, solution)

    m = PATTERNS[category].fullmatch(problem.strip())
    if m is None:
        return CotResult(solution, "", False, f"problem does not match the {category} format")
    given = solution.strip()
    sm = _SOLUTION_PATTERNS[category].fullmatch(given)
    if sm is not None:
        answer = sm.group("ans")
    elif category == "simplify":
        fm = _FRACTION.search(given)
        answer = f"{fm.group(1)}/{fm.group(2)}" if fm else None
    else:
        answer = last_number(given)
    if not answer:
        return CotResult(solution, "", False, f"no {category} answer found in solution {given!r}")
    try:
        # Every builder runs in the contest context, so even incidental Decimal operations
        # (abs, scaleb, display sums) cannot be affected by the caller's decimal settings.
        with contest_context():
            steps = _BUILDERS[category](m, answer, sm)
            if style in STEP_STYLES:
                recipes, check = STEP_STYLES[style]
                steps = recipes[category](m, answer)
                check(steps)
    except _Mismatch as exc:
        return CotResult(solution, answer, False, str(exc))
    except StepError as exc:
        return CotResult(solution, answer, False, f"{category} recipe: {exc}")
    except (InvalidOperation, ArithmeticError, ValueError) as exc:
        return CotResult(solution, answer, False, f"cannot re-derive {category}: {exc!r}")
    return CotResult("\n".join(steps if style in STEP_STYLES else [*steps, given]), answer, True, "")


# --------------------------------------------------------------------------- helpers


def _check_equal(given: str, derived: Decimal) -> None:
    """Raise _Mismatch unless ``given`` equals the decimal ``derived`` exactly (as numbers)."""
    try:
        ok = dec(given) == derived
    except (InvalidOperation, ValueError):
        raise _Mismatch(f"solution answer {given!r} is not a number") from None
    if not ok:
        raise _Mismatch(f"solution answer {given} != re-derived {derived}")


def _check_close(given: str, exact: Fraction, contest_float: float) -> None:
    """Raise _Mismatch unless the float answer ``given`` equals ``exact`` to float precision.

    ``contest_float`` is what the contest's float formula prints; the reason shows it, as
    that is the rendering a reader can compare with the data.
    """
    try:
        value = Fraction(given)
    except (ValueError, ZeroDivisionError):
        raise _Mismatch(f"solution answer {given!r} is not a number") from None
    if not float_close(value, exact):
        raise _Mismatch(f"solution answer {given} != re-derived {contest_float!r}")


def _check_echo(sm: re.Match[str] | None, **operands: str) -> None:
    """Raise _Mismatch when the solution restates operands that differ from the problem's."""
    if sm is None:
        return
    for name, value in operands.items():
        if dec(sm.group(name)) != dec(value):
            raise _Mismatch(f"solution restates {name}={sm.group(name)} but the problem has {value}")


def _sign_word(negative: bool) -> str:
    return "负" if negative else "正"


@lru_cache(maxsize=1)
def _sympy():
    # Imported lazily: sympy takes about a second to import and most callers never need it.
    import sympy

    return sympy


# --------------------------------------------------------------------------- builders
# Each builder re-derives the answer, raises _Mismatch on disagreement, and returns the CoT
# lines that precede the given solution line.


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
    _check_echo(sm, a=m["a"], b=m["b"])
    with contest_context():
        total = dec(m["a"]) + dec(m["b"])
    _check_equal(answer, total)
    return [f"计算 {m['a']} + {paren(m['b'])}。", *_signed_sum_steps(m["a"], m["b"], total)]


def _subtraction(m, answer, sm):
    _check_echo(sm, a=m["a"], b=m["b"])
    with contest_context():
        total = dec(m["a"]) - dec(m["b"])
    _check_equal(answer, total)
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
    _check_echo(sm, a=m["a"], b=m["b"])
    a_lit, b_lit = m["a"], m["b"]
    with contest_context():
        product = dec(a_lit) * dec(b_lit)
        _check_equal(answer, product)
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
    _check_echo(sm, a=m["a"], b=m["b"])
    a_lit, b_lit = m["a"], m["b"]
    a, b = dec(a_lit), dec(b_lit)
    if b == 0:
        raise _Mismatch("division by zero in the problem")
    with contest_context():
        quotient = a / b
        magnitude = abs(a) / abs(b)
    _check_equal(answer, quotient)
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
    _check_echo(sm, a=m["a"])
    a = dec(m["a"])
    if a < 0:
        raise _Mismatch(f"square root of a negative number {m['a']}")
    with contest_context():
        root = a.sqrt()
    _check_equal(answer, root)
    n = math.isqrt(int(a))
    return [
        f"因为 {n}² = {n * n}，{n + 1}² = {(n + 1) ** 2}，且 {n * n} ≤ {m['a']} < {(n + 1) ** 2}，"
        f"所以 √{m['a']} 在 {n} 和 {n + 1} 之间。",
        f"用牛顿迭代 x ← (x + {m['a']} / x) / 2 逐步逼近，保留 28 位有效数字得 {plain(root)}。",
    ]


def _power(m, answer, sm):
    _check_echo(sm, a=m["a"], n=m["n"])
    a_lit, n = m["a"], int(m["n"])
    with contest_context():
        a = dec(a_lit)
        if a == 0 and n == 0:
            raise _Mismatch("0 to the power 0 is undefined")
        value = a**n
        _check_equal(answer, value)
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
        raise _Mismatch("coefficient of x is 0; the equation has no unique solution")
    x = -b / a  # contest rule: Python float division; sympy below is the exact cross-check
    sp = _sympy()
    exact = sp.Rational(-b, a)
    # Exact root check, then the float must be that root correctly rounded.
    if sp.Integer(a) * exact + b != 0 or float(exact) != x:
        raise _Mismatch(f"float -b/a = {x!r} disagrees with sympy's exact solution {exact}")
    _check_close(answer, Fraction(-b, a), x)
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
            raise _Mismatch("0 to the power 0 is undefined")
        xn = x**n
        y = Decimal(a) * xn
    sp = _sympy()
    exact = sp.Integer(a) * sp.Rational(x_lit) ** n
    if exact != 0 and abs(sp.Rational(str(y)) / exact - 1) > sp.Rational(1, 10**25):
        raise _Mismatch(f"decimal value {y} disagrees with sympy's exact value {sp.N(exact, 30)}")
    _check_equal(answer, y)
    return [
        f"把 x = {x_lit} 代入 y = {a}x^{n}。",
        f"先算 {x_lit}^{n} = {xn}",
        f"再乘系数：{a} × {xn} = {y}",
    ]


def _mean(m, answer, sm):
    xs = [int(t) for t in m["xs"].split(", ")]
    total = sum(xs)
    # contest rule: float sum/len, which is why an integer mean prints as 61.0
    _check_close(answer, Fraction(total, len(xs)), total / len(xs))
    return [
        f"数据共 {len(xs)} 个。",
        f"求和：{' + '.join(str(v) for v in xs)} = {total}",
        f"平均值 = {total} / {len(xs)} = {answer}",
    ]


def _area(m, answer, sm):
    a, b = int(m["a"]), int(m["b"])
    _check_equal(answer, Decimal(a * b))
    return [f"长方形面积 = 长 × 宽 = {a} × {b} = {a * b}（平方厘米）"]


def _mass(m, answer, sm):
    a, b = int(m["a"]), int(m["b"])
    _check_equal(answer, Decimal(a * b))
    return [f"质量 = 密度 × 体积 = {a} × {b} = {a * b}（克）"]


def _sales(m, answer, sm):
    a, b = int(m["a"]), int(m["b"])
    # contest rule (see module doc): unrounded float a * (1 + b/100)
    _check_close(answer, Fraction(a * (100 + b), 100), a * (1 + b / 100))
    factor = Decimal(100 + b) / 100
    return [
        f"今年销售额 = 去年销售额 × (1 + 增长率) = {a} × (1 + {b}%) = {a} × {plain(factor)}",
        f"= {answer}（万元）",
    ]


def _discount(m, answer, sm):
    a, b = int(m["a"]), int(m["b"])
    if a == 0:
        raise _Mismatch("original price is 0")
    # contest rule: float (a - b) / a * 100; b > a (a price rise) gives a negative ratio
    _check_close(answer, Fraction((a - b) * 100, a), (a - b) / a * 100)
    return [
        f"折扣比例 = (原价 - 现价) / 原价 × 100 = ({a} - {b}) / {a} × 100",
        f"= {a - b} / {a} × 100 = {answer}",
    ]


def _simplify(m, answer, sm):
    num, den = int(m["a"]), int(m["b"])
    if den == 0:
        raise _Mismatch("denominator is 0")
    exact = _sympy().Rational(num, den)
    g_num, _, g_den = answer.partition("/")
    given = Fraction(int(g_num), int(g_den)) if int(g_den) else None
    if given is None or given != Fraction(int(exact.p), int(exact.q)):
        raise _Mismatch(f"solution answer {answer} != re-derived {exact.p}/{exact.q}")
    if math.gcd(int(g_num), int(g_den)) != 1:
        raise _Mismatch(f"solution answer {answer} is not in lowest terms ({exact.p}/{exact.q})")
    g = math.gcd(num, den)
    return [
        f"分子 {num} 与分母 {den} 的最大公约数是 {g}。",
        f"分子分母同时除以 {g}：{num} ÷ {g} = {num // g}，{den} ÷ {g} = {den // g}。",
    ]


_BUILDERS: dict[str, Callable[..., list[str]]] = {
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


# --------------------------------------------------------------------------- free-form categories


def _english(solution: str) -> CotResult:
    boxed = last_boxed(solution)
    if boxed is None:
        return CotResult(solution, "", False, "no \\boxed{} answer in the solution")
    if not boxed:
        return CotResult(solution, "", False, "empty \\boxed{} in the solution")
    return CotResult(solution, boxed, True, "")


_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_FINAL_NUMBER = re.compile(NUMBER_RE)


def _word_problem(solution: str) -> CotResult:
    final = gsm8k_final(solution)
    if final is None:
        return CotResult(solution, "", False, "no '#### answer' line in the solution")
    # nan, Infinity and 1e309 pass float() but are no answer a model can be scored against.
    if not _FINAL_NUMBER.fullmatch(final) or not math.isfinite(float(final)):
        return CotResult(solution, final, False, f"final answer {final[:40]!r} is not a finite number")
    for ann in _ANNOTATION.findall(solution):
        expr, eq, shown = ann.rpartition("=")
        if not eq:
            return CotResult(solution, final, False, f"calculator annotation <<{ann}>> has no '='")
        try:
            value, claimed = eval_arithmetic(expr), eval_arithmetic(shown)
        except ValueError as exc:
            return CotResult(solution, final, False, f"annotation <<{ann}>>: {exc}")
        # An annotation may round its result; accept it when it is the value rounded to the
        # decimals it shows.
        decimals = len(shown.strip().partition(".")[2])
        if abs(value - claimed) > Fraction(1, 2 * 10**decimals):
            return CotResult(
                solution, final, False, f"annotation <<{ann}>>: {expr} = {float(value)!r}, not {shown}"
            )
    return CotResult(_ANNOTATION.sub("", solution), final, True, "")


_LETTER = re.compile(r"(?<![A-Za-z])([A-H])(?![A-Za-z])")


def _logic(problem: str, solution: str) -> CotResult:
    letters = _LETTER.findall(solution)
    if not letters:
        return CotResult(solution, "", False, "no option letter (A-H) in the solution")
    answer = letters[-1]
    labels = option_labels(problem)
    if answer not in labels:
        return CotResult(solution, answer, False, f"answer {answer} is not one of the options {labels}")
    return CotResult(solution, answer, True, "")
