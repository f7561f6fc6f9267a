"""``steps`` recipes of the four operations, square root and power (operands from the problem).

Each recipe takes the problem's regex match (``preprocess.classify.PATTERNS`` groups) and the
verified reference answer literal, and returns the target's lines; the last line states the answer.
"""
from __future__ import annotations

from decimal import Decimal

from ..answer.numeric import negate_literal, paren, plain
from .columns import signed_sum
from .division import long_division, root_digits, scaled_pair
from .products import magnitude_product, sign_rule


def _addition(m, answer: str) -> list[str]:
    return signed_sum(f"{m['a']}+{paren(m['b'])}", m["a"], m["b"], answer)


def _subtraction(m, answer: str) -> list[str]:
    return signed_sum(f"{m['a']}-{paren(m['b'])}", m["a"], negate_literal(m["b"]), answer)


def _multiplication(m, answer: str) -> list[str]:
    a, b = Decimal(m["a"]), Decimal(m["b"])
    return [*sign_rule(m["a"], m["b"]), *magnitude_product(a, b), f"{m['a']}*{paren(m['b'])}={answer}"]


def _division(m, answer: str) -> list[str]:
    a, b = Decimal(m["a"]), Decimal(m["b"])
    num, den = scaled_pair(abs(a), abs(b))
    neg = (a < 0) != (b < 0) and a != 0
    return [f"{m['a']}/{paren(m['b'])}={'-' if neg else ''}{num}/{den}", *long_division(num, den),
            f"{m['a']}/{paren(m['b'])}≈{answer}"]


def _square_root(m, answer: str) -> list[str]:
    return [*root_digits(Decimal(m["a"])), f"√{m['a']}≈{answer}"]


def _power(m, answer: str) -> list[str]:
    """Sign rule of ``(-a)^n`` (the contest's reading of ``-a^n``), then repeated multiplication
    (``33833.9236*183.94=6223411.906984``: the power ``k`` is the product's ``k``-th line)."""
    a_lit, n = m["a"], int(m["n"])
    a = Decimal(a_lit)
    x = plain(abs(a))
    lines = []
    if a < 0 and n > 0:
        lines.append(f"({a_lit})**{n}={'-' if n % 2 else ''}{x}**{n}")
    if n == 0:
        return [f"({a_lit})**0={answer}"]
    value = abs(a)
    for k in range(2, n + 1):
        nxt = value * abs(a)
        lines.append(f"{plain(value)}*{x}={plain(nxt)}")
        value = nxt
    lines.append(f"({a_lit})**{n}={answer}")
    return lines


RECIPES = {
    "addition": _addition,
    "subtraction": _subtraction,
    "multiplication": _multiplication,
    "division": _division,
    "square_root": _square_root,
    "power": _power,
}
