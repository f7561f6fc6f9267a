"""Number arithmetic and rendering exactly as the contest's data generator did it.

Contest rule (``/work/shared/data/README.md``): solutions were produced with Python's
``decimal`` module at its default context (28 significant digits, ROUND_HALF_EVEN), and a
few categories (linear equation, mean, discount, sales) with plain Python ``float``.
Every function here uses a private copy of that default context, so a caller that changed
``decimal.getcontext()`` cannot change what we compute.
"""
from __future__ import annotations

import decimal
import re
from decimal import Decimal
from fractions import Fraction

# Built explicitly rather than copied from decimal.DefaultContext: another module may have
# altered DefaultContext, and the contest's numbers depend on these exact settings.
CONTEST_CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999999,
    Emax=999999,
    capitals=1,
    clamp=0,
    flags=[],
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

# A number as the contest writes it, including decimal's scientific form (2.85E+85).
NUMBER_RE = r"-?\d+(?:\.\d+)?(?:[Ee][+-]?\d+)?"
_LAST_NUMBER = re.compile(NUMBER_RE + r"(?!.*\d)", re.S)


def contest_context() -> decimal.localcontext:
    """Return a context manager that activates the contest's 28-digit decimal context."""
    return decimal.localcontext(CONTEST_CONTEXT)


def dec(text: str) -> Decimal:
    """Parse ``text`` exactly (no rounding) into a Decimal.

    Raises:
        decimal.InvalidOperation: ``text`` is not a number.
    """
    return Decimal(text.strip())


def plain(value: Decimal) -> str:
    """Render ``value`` without an exponent (``Decimal('9E+3')`` -> ``'9000'``), for CoT steps."""
    return format(value, "f")


def last_number(text: str) -> str | None:
    """Return the last number written in ``text`` (contest notation), or None if there is none."""
    m = _LAST_NUMBER.search(text)
    return m.group(0) if m else None


def negate_literal(literal: str) -> str:
    """Negate a number literal textually, keeping its digits (``'-4497.85'`` -> ``'4497.85'``)."""
    literal = literal.strip()
    return literal[1:] if literal.startswith("-") else "-" + literal


# Categories whose reference answers the contest rendered from a Python float (README above).
FLOAT_CATEGORIES = ("linear_equation", "mean", "discount", "sales")
# How far the contest's float formulas can land from the exact value, relative: one correctly
# rounded division (-b/a, sum/len) is within 2**-53; (a - b) / a * 100 and a * (1 + b/100) round two
# or three times, within 3 * 2**-53. 2**-51 covers them and no more, so a prediction a few units off
# in the double's last place (17.91044776119404 for 1200/67 = 17.910447761194029...) still fails.
FLOAT_REL_TOL = Fraction(1, 2**51)


def float_close(value: Fraction, reference: Fraction) -> bool:
    """Return whether ``value`` equals ``reference`` to float precision (relative ``FLOAT_REL_TOL``).

    Used where ``reference`` was rendered from a Python float (``FLOAT_CATEGORIES``): the exact
    value 17/9, or its 28-digit decimal, matches the float rendering ``1.8888888888888888``.
    """
    return abs(value - reference) <= abs(reference) * FLOAT_REL_TOL


def paren(literal: str) -> str:
    """Parenthesize a negative literal where it follows an operator (``-796.39`` -> ``(-796.39)``)."""
    return f"({literal})" if literal.startswith("-") else literal
