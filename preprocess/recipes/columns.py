"""Addition and subtraction as digit-aligned column operations (one column per line).

Both operands are aligned on their decimal point (scaled to integers of equal width, the shorter
one padded with leading zeros), and the columns run from the last digit to the first, as children learn
it. Each line is one column: ``a+b[+1]=s`` (a carry comes in as ``+1``) or, for subtraction of the
smaller magnitude, ``a-b[-1]=d`` where ``a`` already includes a borrowed ten (``13-9=4``). The
result digits are the last digits of the lines read bottom-up, the order in which they were
computed (Lee et al. 2023, "Teaching Arithmetic to Small Transformers": producing digits least
significant first makes each one depend on one column and one carry).
"""
from __future__ import annotations

from decimal import Decimal

from ..answer.numeric import plain


def _places(x: Decimal, y: Decimal) -> int:
    return max(-x.as_tuple().exponent, -y.as_tuple().exponent, 0)


def _aligned_digits(x: Decimal, y: Decimal) -> tuple[str, str]:
    places = _places(x, y)
    xs, ys = (str(int(v.scaleb(places))) for v in (x, y))
    width = max(len(xs), len(ys))
    return xs.zfill(width), ys.zfill(width)


def aligned_literals(x: Decimal, y: Decimal) -> tuple[str, str]:
    """``x, y >= 0`` written with as many digits as each other on both sides of the point
    (``756.08`` beside ``3828.45`` is ``0756.08``): the columns the lines below add, made visible.
    Measured: after 200 steps of addition/subtraction, a model trained without this line got 0 of
    11 real items whose operands differ in length right, against 15 of 49 of equal length."""
    places = _places(x, y)
    if not places:  # an integer with leading zeros (0007) is not a number literal
        return plain(x), plain(y)
    return tuple(f"{d[:len(d) - places]}.{d[len(d) - places:]}" for d in _aligned_digits(x, y))


def add_columns(xs: str, ys: str) -> list[tuple[int, int, int, int]]:
    """``(a, b, carry in, a + b + carry)`` of each column of two equal-width digit strings, last column first."""
    columns, carry = [], 0
    for a, b in zip(map(int, reversed(xs)), map(int, reversed(ys))):
        columns.append((a, b, carry, a + b + carry))
        carry = (a + b + carry) // 10
    return columns


def subtract_columns(xs: str, ys: str) -> list[tuple[int, int, int, int, int]]:
    """``(a, b, borrow in, borrow out, digit)`` of each column of ``xs - ys`` (``xs >= ys``, equal
    width), last column first; ``digit = a + 10 * borrow out - b - borrow in``."""
    columns, borrow = [], 0
    for a, b in zip(map(int, reversed(xs)), map(int, reversed(ys))):
        out = 1 if a - borrow < b else 0
        columns.append((a, b, borrow, out, a + 10 * out - b - borrow))
        borrow = out
    return columns


def column_add(x: Decimal, y: Decimal) -> list[str]:
    """Column lines of ``x + y`` for ``x, y >= 0``, last column first (the last line's sum shows a final carry)."""
    return [f"{a}+{b}{'+1' if c else ''}={s}" for a, b, c, s in add_columns(*_aligned_digits(x, y))]


def column_subtract(x: Decimal, y: Decimal) -> list[str]:
    """Column lines of ``x - y`` for ``x >= y >= 0``, last column first (borrowed tens written in)."""
    return [f"{a + 10 * out}-{b}{'-1' if c else ''}={d}"
            for a, b, c, out, d in subtract_columns(*_aligned_digits(x, y))]


def signed_sum(expr: str, a_lit: str, b_lit: str, answer: str) -> list[str]:
    """Lines computing ``a + b`` for signed literals: the sign rule, the columns, the result.

    Same signs add magnitudes and keep the sign; different signs subtract the smaller magnitude
    from the larger and take the larger one's sign. The first line rewrites ``expr`` (the problem's
    expression, equal to ``a + b``) as a signed operation on magnitudes written digit-aligned
    (:func:`aligned_literals`), unless that is ``expr`` itself; the last states that operation's
    result, ``answer``.
    """
    a, b = Decimal(a_lit), Decimal(b_lit)
    x, y = abs(a), abs(b)
    if (a < 0) == (b < 0) or a == 0 or b == 0:
        mag = "+".join(aligned_literals(x, y))
        signed = mag if a >= 0 and b >= 0 else f"-({mag})"
        columns = column_add(x, y)
    else:
        big, small = (x, y) if x >= y else (y, x)
        mag = "-".join(aligned_literals(big, small))
        signed = mag if (a if x >= y else b) > 0 else f"-({mag})"
        columns = column_subtract(big, small)
    head = [] if signed == expr else [f"{expr}={signed}"]
    return [*head, *columns, f"{signed}={answer}"]
