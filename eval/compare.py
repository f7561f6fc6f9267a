"""Decide whether an extracted prediction matches a reference answer.

The contest counts an item as correct "when the numeric result equals the reference answer"
(``shared/data/README.md``). References were computed with Python's ``decimal`` at 28 significant
digits (``98.76988407404354142259372287``) while a model usually writes fewer digits or a float
rendering (``98.76988407404354``), so exact equality alone under-counts; the rules below make the
tolerance explicit and selectable:

``exact``
    numeric equality of the exact rational values.
``absolute``
    ``|p - r| <= tol``.
``relative`` (default)
    ``|p - r| <= tol * max(1, |r|)``: absolute near zero, relative for large values such as the
    ``E+85`` function values.
``round:N``
    both values rounded to N decimals (half away from zero, as people round by hand) are equal.

References that are not numbers (English MATH answers such as ``7\\sqrt{5}``) compare by
normalised string equality, in the spirit of the Hendrycks MATH ``is_equiv`` string cleanup.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

from eval.extract import strip_decorations, to_number

RULES = ("exact", "absolute", "relative", "round:N")


def parse_rule(rule: str) -> tuple[str, int | None]:
    """Split ``rule`` into its name and, for ``round:N``, the number of decimals.

    Raises:
        ValueError: unknown rule, or ``round:`` without a non-negative integer.
    """
    if rule in ("exact", "absolute", "relative"):
        return rule, None
    m = re.fullmatch(r"round:(\d+)", rule)
    if m is None:
        raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
    return "round", int(m.group(1))


def _round_half_away(x: Fraction, places: int) -> Fraction:
    scale = 10 ** places
    scaled = abs(x) * scale
    rounded = math.floor(scaled + Fraction(1, 2))
    return Fraction(rounded if x >= 0 else -rounded, scale)


def is_correct(pred: str | None, ref: str, rule: str = "relative", tol: float = 1e-6) -> bool:
    """Return whether prediction ``pred`` matches reference ``ref`` under ``rule``.

    Args:
        pred: extracted answer (``None`` when nothing was found: always wrong).
        ref: reference answer string.
        rule: ``exact``, ``absolute``, ``relative`` or ``round:N`` (see module docstring).
        tol: tolerance for ``absolute`` and ``relative``; read through its decimal repr so
            ``1e-6`` means exactly 10**-6.

    Raises:
        ValueError: bad ``rule`` or negative/non-finite ``tol``.
    """
    name, places = parse_rule(rule)
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    if pred is None:
        return False
    r = to_number(ref)
    p = to_number(pred)
    if r is None or p is None:
        # Both must be non-numeric to match as text; a number never equals "7\sqrt{5}".
        if r is None and p is None:
            want = strip_decorations(ref)
            return bool(want) and strip_decorations(pred) == want
        return False
    if name == "exact":
        return p == r
    if name == "round":
        return _round_half_away(p, places) == _round_half_away(r, places)
    t = Fraction(repr(float(tol)))
    if name == "absolute":
        return abs(p - r) <= t
    return abs(p - r) <= t * max(Fraction(1), abs(r))
