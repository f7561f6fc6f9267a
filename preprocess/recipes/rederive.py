"""What every re-derivation of a computational answer shares: the comparisons with the given answer.

The builders of :mod:`preprocess.recipes.classic` re-derive each answer from the problem text and call
these; a disagreement raises :class:`Mismatch`, which :func:`preprocess.cot.synthesize` reports as the
item's reason for being unverified.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache

from ..answer.numeric import dec, float_close


class Mismatch(Exception):
    """The solution's answer is missing, malformed or disagrees with the re-derivation."""


def check_equal(given: str, derived: Decimal) -> None:
    """Raise Mismatch unless ``given`` equals the decimal ``derived`` exactly (as numbers)."""
    try:
        ok = dec(given) == derived
    except (InvalidOperation, ValueError):
        raise Mismatch(f"solution answer {given!r} is not a number") from None
    if not ok:
        raise Mismatch(f"solution answer {given} != re-derived {derived}")


def check_close(given: str, exact: Fraction, contest_float: float) -> None:
    """Raise Mismatch unless the float answer ``given`` equals ``exact`` to float precision.

    ``contest_float`` is what the contest's float formula prints; the reason shows it, as
    that is the rendering a reader can compare with the data.
    """
    try:
        value = Fraction(given)
    except (ValueError, ZeroDivisionError):
        raise Mismatch(f"solution answer {given!r} is not a number") from None
    if not float_close(value, exact):
        raise Mismatch(f"solution answer {given} != re-derived {contest_float!r}")


def check_echo(sm: re.Match[str] | None, **operands: str) -> None:
    """Raise Mismatch when the solution restates operands that differ from the problem's."""
    if sm is None:
        return
    for name, value in operands.items():
        if dec(sm.group(name)) != dec(value):
            raise Mismatch(f"solution restates {name}={sm.group(name)} but the problem has {value}")


@lru_cache(maxsize=1)
def sympy_module():
    # Imported lazily: sympy takes about a second to import and most callers never need it.
    import sympy

    return sympy
