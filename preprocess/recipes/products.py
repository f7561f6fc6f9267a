"""Multiplication by one-digit partial products, and the categories built on it (power, area, mass).

The contest's winning team wrote a product as a sum of partial products by one digit of the
second factor (2024 Ascend contest, topic 2, first phase, mindspore-courses/competition). Here the
factors are scaled to integers first (``7904.09*9169.76=790409*916976/10**4``); each line then
multiplies the first factor by one digit, and the partial products are accumulated most
significant digit first, each accumulation one shift (``*10``) and one addition:
``7113681*10+790409=71927219``.
"""
from __future__ import annotations

from decimal import Decimal

from ..answer.numeric import paren, plain


def _scaled(x: Decimal) -> tuple[int, int]:
    places = max(-x.as_tuple().exponent, 0)
    return int(x.scaleb(places)), places


def integer_product(a: int, b: int) -> list[str]:
    """Lines of ``a * b`` for integers ``a, b >= 0``: partial products by each digit of ``b`` and
    their shifted running sum; the last line's right side is the product."""
    digits = [int(d) for d in str(b)]
    lines = [f"{a}*{d}={a * d}" for d in sorted(set(digits)) if d > 1]
    acc = a * digits[0]
    for d in digits[1:]:
        nxt = acc * 10 + a * d
        lines.append(f"{acc}*10+{a * d}={nxt}" if d else f"{acc}*10={nxt}")
        acc = nxt
    return lines


def magnitude_product(x: Decimal, y: Decimal) -> list[str]:
    """Lines of ``|x| * |y|``: the scaling to integers, the integer product, the scaled result."""
    x, y = abs(x), abs(y)
    (a, pa), (b, pb) = _scaled(x), _scaled(y)
    places = pa + pb
    if a == 0 or b == 0:
        return [f"{plain(x)}*{plain(y)}=0"]
    if places == 0:
        return [*integer_product(a, b), f"{a}*{b}={a * b}"]
    return [f"{plain(x)}*{plain(y)}={a}*{b}/10**{places}", *integer_product(a, b),
            f"{a * b}/10**{places}={plain(x * y)}"]


def sign_rule(a_lit: str, b_lit: str) -> list[str]:
    """``a*b=-(|a|*|b|)`` or ``a*b=|a|*|b|`` when a factor is negative: the product's sign from
    the factors' signs; no line when both are non-negative."""
    a, b = Decimal(a_lit), Decimal(b_lit)
    if a >= 0 and b >= 0:
        return []
    neg = (a < 0) != (b < 0) and a != 0 and b != 0
    return [f"{a_lit}*{paren(b_lit)}={'-' if neg else ''}{plain(abs(a))}*{plain(abs(b))}"]
