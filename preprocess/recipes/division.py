"""Long division and digit-by-digit square root, bounded to a few explicit digits.

Policy (see ``docs/preprocess.md``, "Answer precision"): the contest's reference for a quotient or a
square root has 28 significant digits (``decimal``'s default context). Deriving each of them takes
one long-division line of about 25 SmolLM2 tokens, about 700 tokens in all, far beyond the 192 new
tokens the evaluation allows. The recipe therefore derives the integer part and the first
``DIGITS`` decimals explicitly and then states the reference answer with ``≈`` (the step checker
verifies it is the exact value rounded to the digits shown). The final line is still the reference
answer, so the target passes ``exact``; only the leading digits are taught step by step.
"""
from __future__ import annotations

import math
from decimal import Decimal

from ..answer.numeric import plain

# Decimals derived by explicit long-division / digit-by-digit steps before the answer is stated.
DIGITS = 2


def scaled_pair(x: Decimal, y: Decimal) -> tuple[int, int]:
    """``x / y`` as integers with the same scale (``6122.87/6284.25`` -> ``612287, 628425``)."""
    places = max(-x.as_tuple().exponent, -y.as_tuple().exponent, 0)
    return int(x.scaleb(places)), int(y.scaleb(places))


def long_division(num: int, den: int, digits: int = DIGITS) -> list[str]:
    """Lines ``num=q*den+r`` for the integer part, then one line ``10r=d*den+r'`` per decimal.

    Args:
        num, den: integers, ``num >= 0``, ``den > 0``.
        digits: decimals derived (stops early when the remainder is 0).
    """
    q, r = divmod(num, den)
    lines = [f"{num}={q}*{den}+{r}"]
    for _ in range(digits):
        if r == 0:
            break
        d, r2 = divmod(10 * r, den)
        lines.append(f"{10 * r}={d}*{den}+{r2}")
        r = r2
    return lines


def root_digits(x: Decimal, digits: int = DIGITS) -> list[str]:
    """Digit-by-digit square root of ``x >= 0``: ``n**2<=x<(n+1)**2`` for the integer part, then
    one such bracket per decimal (``32.5**2<=1056.35<32.6**2``)."""
    n = math.isqrt(int(x))
    lines = [f"{n}**2<={plain(x)}<{n + 1}**2"]
    low, step = Decimal(n), Decimal(1)
    for _ in range(digits):
        step /= 10
        d = max(k for k in range(10) if (low + k * step) ** 2 <= x)
        low += d * step
        lines.append(f"{plain(low)}**2<={plain(x)}<{plain(low + step)}**2")
    return lines
