"""Step checker: every line of a ``steps`` recipe is a claim that is re-computed exactly.

A line is ``[label: ]E1 R E2 [R E3 ...]``: arithmetic expressions joined by relations. The label
(any text before the first ``": "``) is not checked; everything after it must be a claim, so no
line of a recipe can assert something unchecked.

Expressions are those of :func:`preprocess.arith.eval_arithmetic` (numbers, ``+ - * / // % **``,
parentheses, exact ``Fraction`` arithmetic) plus the contest's notation: ``^`` for a power
(``183.94^5``), ``√N`` for the square root of a number literal, and decimal's scientific form
(``2.85E+85``, read exactly).

Relations:
    ``=``  exact equality of the two values.
    ``<`` ``<=``  exact order.
    ``≈``  the right side is a number literal that is the left side's value rounded to the digits
           it shows (``|x - v| <= 5 * 10**-(d+1)`` for ``d`` decimals shown, which every correctly
           rounded result meets, e.g. the contest's 28-significant-digit ``decimal`` results), or
           that has at most 17 significant digits and is ``numeric.float_close`` to the left
           side, i.e. a few ulps of a double (the contest rendered linear equation, mean, discount
           and sales answers from Python floats, whose last digits are binary rounding and depend
           on the evaluation order: ``559/9 ≈ 62.111111111111114``, ``800/71 ≈ 11.267605633802818``
           from ``(71-63)/71*100``).
"""
from __future__ import annotations

import re
from decimal import Decimal, localcontext
from fractions import Fraction

from ..arith import eval_arithmetic
from ..answer.numeric import float_close

_RELATION = re.compile(r"(<=|≈|=|<)")
_SQRT = re.compile(r"√\s*(\d+(?:\.\d+)?)")
_LITERAL = re.compile(r"-?\d+(?:\.(\d+))?([Ee][+-]?\d+)?")
# Far more digits than any claim shows, so a square root's error cannot decide a comparison.
_SQRT_DIGITS = 80
# A double prints with at most 17 significant digits; longer literals must be correctly rounded.
_FLOAT_DIGITS = 17


class StepError(ValueError):
    """A recipe line whose claim is false or cannot be read; the message names line and claim."""


def _value(expr: str) -> Fraction:
    text = expr.strip()
    m = _SQRT.fullmatch(text)
    if m:
        with localcontext() as ctx:
            ctx.prec = _SQRT_DIGITS
            return Fraction(Decimal(m.group(1)).sqrt())
    if "√" in text:
        raise ValueError(f"√ applies to a number literal only, got {text!r}")
    # Contest notation: "^" is a power (the solutions write 183.94^5).
    return eval_arithmetic(text.replace("^", "**"))


def _approx(left: Fraction, literal: str) -> bool:
    m = _LITERAL.fullmatch(literal.strip())
    if m is None:
        raise ValueError(f"the right side of ≈ must be a number literal, got {literal!r}")
    shown = Fraction(Decimal(literal.strip()))
    decimals = len(m.group(1) or "") - int(m.group(2)[1:] if m.group(2) else 0)
    if abs(left - shown) <= 5 * Fraction(10) ** -(decimals + 1):
        return True
    significant = len((m.group(0).lstrip("-").replace(".", "")).lstrip("0"))
    return not m.group(2) and significant <= _FLOAT_DIGITS and float_close(shown, left)


def _show(value: Fraction) -> str:
    """``value`` to more significant digits than any claim shows (a float would hide a 20th-digit error)."""
    with localcontext() as ctx:
        ctx.prec = _SQRT_DIGITS // 2
        return str(Decimal(value.numerator) / Decimal(value.denominator))


def check_line(line: str) -> None:
    """Verify one recipe line.

    Raises:
        StepError: the line has no relation, an expression cannot be evaluated, or a relation is
            false; the message quotes the line and, for a false claim, both values.
    """
    _, sep, body = line.partition(": ")
    body = body if sep else line
    parts = _RELATION.split(body)
    if len(parts) < 3:
        raise StepError(f"no claim (=, <, <=, ≈) in line {line!r}")
    exprs, relations = parts[0::2], parts[1::2]
    try:
        values = [_value(e) for e in exprs]
        for i, rel in enumerate(relations):
            a, b = values[i], values[i + 1]
            ok = {"=": a == b, "<": a < b, "<=": a <= b}.get(rel)
            if ok is None:
                ok = _approx(a, exprs[i + 1])
            if not ok:
                raise StepError(f"false claim in line {line!r}: {exprs[i].strip()} = {_show(a)}, "
                                f"not {rel} {exprs[i + 1].strip()} = {_show(b)}")
    except StepError:
        raise
    except ValueError as exc:
        raise StepError(f"cannot evaluate line {line!r}: {exc}") from None


def check_steps(lines: list[str]) -> None:
    """Verify every line of a recipe (see :func:`check_line`).

    Raises:
        StepError: naming the first bad line with its 1-based number.
    """
    for i, line in enumerate(lines, 1):
        try:
            check_line(line)
        except StepError as exc:
            raise StepError(f"step {i}: {exc}") from None
