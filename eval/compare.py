"""Decide whether an extracted prediction matches a reference answer.

The contest counts an item as correct "如计算结果（数值）与正确答案相同" — when the numeric result
equals the reference answer (topic-2 README, mindspore-courses/competition,
2024-ascend-innovation-contest/topic2-finetune; ``shared/data/README.md``). That is ``exact``, the
default and the headline everywhere. References were computed with Python's ``decimal`` at 28
significant digits (``98.76988407404354142259372287``); four categories were rendered from a Python
float instead (:data:`preprocess.answer.numeric.FLOAT_CATEGORIES`).

Rules (``RULES``):

``exact`` (default)
    the prediction's value equals the reference's value as exact rationals (``-16956.7`` equals
    ``-16956.70``; ``\\frac{3}{4}`` equals ``0.75``; a wrong last digit fails however large the
    number).
``printed`` (the one tolerant rule)
    ``exact``, or the prediction is the reference correctly rounded at the prediction's own last
    printed digit (``|p - r| <= 0.5 * 10**e`` with ``e`` the exponent of that digit, so integers
    are held to the units digit) *and* it prints at least ``min(PRINTED_MIN_DIGITS, the
    reference's)`` digits. Digits counted: the significant digits, or for a number below 1
    written without an exponent its decimals (``0.05123`` counts 5). ``0.41935`` passes for
    ``0.41935483870967744``; ``72478650`` fails for ``72478608.3184`` (off by 41.7 at the units
    digit); ``98.77`` fails for ``98.76988…`` (4 digits, below the floor).
``round:N``
    the prediction is correct to N decimal places: ``|p - r| <= 0.5 * 10**-N``, the textbook
    definition, which matches training targets rounded half-up to N places
    (:mod:`preprocess.rounding`). The reference is never rounded, so nothing is rounded twice:
    ``-0.419355`` and ``-0.41935`` pass ``round:5`` for ``-0.41935483870967744``, ``-0.41936`` fails.

``fewer_decimals`` (not the official rule; shown beside it)
    both numbers, as printed, are rounded half-up to the fewer decimals of the two and then
    compared: ``98.77`` passes for ``98.76988…`` (2 decimals), ``99`` passes too (0 decimals),
    ``98.8`` passes for ``98.76`` and ``98.7`` fails (1 decimal). What the contest
    teams' own scorers did (nju-websoft ``score_test.py``, mindspore-courses/competition,
    2024-ascend-innovation-contest/topic2-finetune/first-phase, as issue 22 describes it; the
    half-up rounding is ours). Only decimal literals are rounded; a fraction or an exponent form
    is held to ``exact``.

Rules shared by all:

* **Float references.** For an item of a float category the reference names a double, whose
  last digit carries the float's own rounding (``1.8888888888888888`` for 34/18): a prediction
  within ``FLOAT_REL_TOL`` (2**-51 relative: what the float formula itself can be off) of it
  matches, so the correct value evaluated at 28 digits (``1.888888888888888888888888889``) is not
  marked wrong for the reference's rounding. Without a category nothing is assumed.
* **simplify.** The task is to write the fraction in lowest terms, so a prediction must be a
  fraction ``a/b`` (or ``\\frac{a}{b}``) with ``gcd(a, b) = 1``, or an integer when the reduced
  denominator is 1: ``10/12`` fails for ``5/6`` under every rule, as does ``0.8333``.
* References that are not numbers (English MATH answers such as ``7\\sqrt{5}``) compare by
  normalised string equality, in the spirit of the Hendrycks MATH ``is_equiv`` string cleanup.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from preprocess.answer.extract import strip_decorations, to_number
from preprocess.answer.numeric import FLOAT_CATEGORIES, float_close

RULES = ("exact", "printed", "fewer_decimals", "round:N")
DEFAULT_RULE = "exact"
# Fewest significant digits a rounded prediction may keep under ``printed`` (fewer only when the
# reference itself prints fewer): below it a rounding hides too much of the computation.
PRINTED_MIN_DIGITS = 5

_FRACTION_RE = re.compile(r"-?(\d+)/(\d+)|-?\\frac\{(\d+)\}\{(\d+)\}")


def parse_rule(rule: str) -> tuple[str, int | None]:
    """Split ``rule`` into its name and, for ``round:N``, the number of decimals.

    Raises:
        ValueError: unknown rule, or ``round:`` without a non-negative integer.
    """
    if rule in ("exact", "printed", "fewer_decimals"):
        return rule, None
    m = re.fullmatch(r"round:(\d+)", rule)
    if m is None:
        raise ValueError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
    return "round", int(m.group(1))


def _printed_digits(pred: str) -> tuple[int, int] | None:
    """``(exponent of the last printed digit, digits counted)`` of a decimal number (module
    docstring, ``printed``), or None for fractions and other forms that print no decimal digits."""
    text = strip_decorations(pred).replace(",", "")
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    sign, digits, exponent = d.as_tuple()
    if abs(d) < 1 and "e" not in text.lower():
        return exponent, -exponent
    return exponent, len("".join(map(str, digits)).lstrip("0")) or 1


def _decimals(text: str) -> int | None:
    """Digits after the decimal point of a plain decimal literal (``-12.50`` -> 2, ``7`` -> 0), or None."""
    text = strip_decorations(text).replace(",", "")
    m = re.fullmatch(r"[-+]?\d+(?:\.(\d*))?|[-+]?\.(\d+)", text)
    if m is None:
        return None
    return len(m.group(1) or m.group(2) or "")


def _round_half_up(value: Fraction, places: int) -> Fraction:
    scaled = value * 10**places
    whole = math.floor(abs(scaled) + Fraction(1, 2))
    return Fraction(whole if scaled >= 0 else -whole, 10**places)


def _in_lowest_terms(pred: str, value: Fraction) -> bool:
    text = strip_decorations(pred).replace("\\dfrac", "\\frac")
    m = _FRACTION_RE.fullmatch(text)
    if m is None:
        return value.denominator == 1 and re.fullmatch(r"-?\d+", text) is not None
    num, den = (int(g) for g in m.groups() if g is not None)
    return den != 0 and math.gcd(num, den) == 1


def is_correct(pred: str | None, ref: str, rule: str = DEFAULT_RULE, category: str | None = None) -> bool:
    """Return whether prediction ``pred`` matches reference ``ref`` under ``rule``.

    Args:
        pred: extracted answer (``None`` when nothing was found: always wrong).
        ref: reference answer string.
        rule: ``exact``, ``printed``, ``fewer_decimals`` or ``round:N`` (see module docstring).
        category: the item's category, if known; ``simplify`` requires lowest terms and the
            float categories accept the reference's float rounding (module docstring).

    Raises:
        ValueError: bad ``rule``.
    """
    name, places = parse_rule(rule)
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
    if category == "simplify" and not _in_lowest_terms(pred, p):
        return False
    if p == r or (category in FLOAT_CATEGORIES and float_close(p, r)):
        return True
    if name == "round":
        return abs(p - r) <= Fraction(1, 2 * 10**places)
    if name == "fewer_decimals":
        places = [_decimals(pred), _decimals(ref)]
        if None in places:
            return False
        n = min(places)
        return _round_half_up(p, n) == _round_half_up(r, n)
    if name == "printed":
        printed = _printed_digits(pred)
        ref_printed = _printed_digits(ref)
        if printed is None:
            return False
        exponent, counted = printed
        floor = min(PRINTED_MIN_DIGITS, ref_printed[1] if ref_printed else PRINTED_MIN_DIGITS)
        return counted >= floor and abs(p - r) <= Fraction(10) ** exponent / 2
    return False
