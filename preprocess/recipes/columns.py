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

from ..numeric import plain


def _aligned_digits(x: Decimal, y: Decimal) -> tuple[str, str]:
    places = max(-x.as_tuple().exponent, -y.as_tuple().exponent, 0)
    xs, ys = (str(int(v.scaleb(places))) for v in (x, y))
    width = max(len(xs), len(ys))
    return xs.zfill(width), ys.zfill(width)


def column_add(x: Decimal, y: Decimal) -> list[str]:
    """Column lines of ``x + y`` for ``x, y >= 0``, last column first (the last line's sum shows a final carry)."""
    xs, ys = _aligned_digits(x, y)
    lines, carry = [], 0
    for a, b in zip(reversed(xs), reversed(ys)):
        s = int(a) + int(b) + carry
        lines.append(f"{a}+{b}{'+1' if carry else ''}={s}")
        carry = s // 10
    return lines


def column_subtract(x: Decimal, y: Decimal) -> list[str]:
    """Column lines of ``x - y`` for ``x >= y >= 0``, last column first (borrowed tens written in)."""
    xs, ys = _aligned_digits(x, y)
    lines, borrow = [], 0
    for a, b in zip(reversed(xs), reversed(ys)):
        top = int(a)
        out = 1 if top - borrow < int(b) else 0
        d = top + 10 * out - int(b) - borrow
        lines.append(f"{top + 10 * out}-{b}{'-1' if borrow else ''}={d}")
        borrow = out
    return lines


def signed_sum(expr: str, a_lit: str, b_lit: str, answer: str) -> list[str]:
    """Lines computing ``a + b`` for signed literals: the sign rule, the columns, the result.

    Same signs add magnitudes and keep the sign; different signs subtract the smaller magnitude
    from the larger and take the larger one's sign. The first line rewrites ``expr`` (the problem's
    expression, equal to ``a + b``) as a signed operation on magnitudes, unless both are
    non-negative; the last states that operation's result, ``answer``.
    """
    a, b = Decimal(a_lit), Decimal(b_lit)
    x, y = abs(a), abs(b)
    if (a < 0) == (b < 0) or a == 0 or b == 0:
        mag = f"{plain(x)}+{plain(y)}"
        signed = mag if a >= 0 and b >= 0 else f"-({mag})"
        columns = column_add(x, y)
    else:
        big, small = (x, y) if x >= y else (y, x)
        mag = f"{plain(big)}-{plain(small)}"
        signed = mag if (a if x >= y else b) > 0 else f"-({mag})"
        columns = column_subtract(big, small)
    head = [] if signed == expr else [f"{expr}={signed}"]
    return [*head, *columns, f"{signed}={answer}"]
