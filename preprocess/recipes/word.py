"""``steps`` recipes of the formula categories: substitution, then small arithmetic steps.

Linear equation, mean, discount and sales references were rendered from Python floats
(``/work/shared/data/README.md``); their last line states the reference with ``≈``, which the step
checker accepts when it is the same double as the exact fraction (``559/9≈62.111111111111114``).
"""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from ..answer.numeric import paren
from .division import long_division
from .products import integer_product


def _linear_equation(m, answer: str) -> list[str]:
    a, b = int(m["a"]), int(m["b"])
    lines = [f"x: {-b}/({a})={-b * _sgn(a)}/{abs(a)}"]
    if b:
        lines += long_division(abs(b), abs(a))
    return [*lines, f"x: {-b}/({a})≈{answer}"]


def _sgn(v: int) -> int:
    return -1 if v < 0 else 1


def _function_value(m, answer: str) -> list[str]:
    x_lit, a, n = m["x"], int(m["a"]), int(m["n"])
    xn = Decimal(x_lit) ** n
    # decimal's own rendering: 2.85E+85 instead of 86 digits, as the contest's answers are written.
    rel = "=" if Fraction(xn) == Fraction(x_lit) ** n else "≈"
    return [f"{x_lit}**{n}{rel}{xn}", f"y: {a}*{xn}≈{answer}"]


def _mean(m, answer: str) -> list[str]:
    xs = [int(t) for t in m["xs"].split(", ")]
    lines, total = [], xs[0]
    for v in xs[1:]:
        lines.append(f"{total}+{paren(str(v))}={total + v}")
        total += v
    return [*lines, f"{total}/{len(xs)}≈{answer}"]


def _rectangle(m, answer: str) -> list[str]:
    a, b = int(m["a"]), int(m["b"])
    return [*integer_product(a, b), f"{a}*{b}={answer}"]


def _sales(m, answer: str) -> list[str]:
    a, b = int(m["a"]), int(m["b"])
    return [f"{a}*(1+{b}/100)={a}*{100 + b}/100", *integer_product(a, 100 + b),
            f"{a * (100 + b)}/100≈{answer}"]


def _discount(m, answer: str) -> list[str]:
    a, b = int(m["a"]), int(m["b"])
    return [f"({a}-{b})/{a}*100={a - b}*100/{a}", f"{(a - b) * 100}/{a}≈{answer}"]


def _simplify(m, answer: str) -> list[str]:
    """Euclid's algorithm for the greatest common divisor, then both terms divided by it."""
    num, den = int(m["a"]), int(m["b"])
    lines, x, y = [], den, num
    while y:
        lines.append(f"{x}={x // y}*{y}+{x % y}")
        x, y = y, x % y
    g = math.gcd(num, den)
    return [*lines, f"{num}/{g}={num // g}", f"{den}/{g}={den // g}", f"{num}/{den}={answer}"]


RECIPES = {
    "linear_equation": _linear_equation,
    "function_value": _function_value,
    "mean": _mean,
    "area": _rectangle,
    "mass": _rectangle,
    "sales": _sales,
    "discount": _discount,
    "simplify": _simplify,
}
