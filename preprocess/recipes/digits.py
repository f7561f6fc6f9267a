"""``digits`` recipes: the ``steps`` recipes with fixed-width digit-level addition/subtraction and a
stated precision for division and square root, written so that two tokenizers see one digit per token.

Why a separate style (issue 22): after 200-250 steps on ``steps`` targets the model copied wrong
operand digits into its column lines and lost the sign of signed subtractions (docs/recipe_runs.md).
Lee et al. 2023, "Teaching Arithmetic to Small Transformers", found outputs produced least
significant digit first, with a short scratchpad, the most sample-efficient for small models.

Addition and subtraction (``-5740.03 + -3606.43``)::

    -5740.03+(-3606.43)=-(0 5 7 4 0.0 3+0 3 6 0 6.4 3)   sign rule; magnitudes zero-padded, spaced
    3+3+0=06                                             one column per line, last column first
    0+4+0=04
    ...
    0+0+0=00
    -0 9 3 4 6.4 6=-9346.46                              the lines' last digits bottom-up, the answer

Every item of the contest's shape (at most 4 integer digits and 2 decimals: all 640 operands of
sample_dev) is laid out identically: ``INT_DIGITS`` integer digits (one more than the operands, for
the sum's carry) and ``FRACTION_DIGITS`` decimals, so 7 column lines of the same width. A column
line is ``a+b+c=ss`` (``c`` the carry in, ``ss`` two digits) or ``Ba-b-c=d`` (``B`` 1 when the column
borrows a ten, ``c`` the borrow in). Fixed widths put every digit that a token copies (an operand's
column digit, the carry in, a result digit) at the same distance back in every item, so the model
learns offsets instead of counting digits; the earlier layout (unpadded operands, lines of varying
width) taught no digit in 200 steps (docs/recipe_runs.md).

Digits are separated by spaces because tokenizers differ: SmolLM2 splits every digit, Llama 3's
tiktoken groups up to three (``5740.03`` is ``574|0|.|03``), and a digit inside a group cannot be
read off one column at a time. Spaced, both give one token per digit (tests/preprocess/test_recipes_digits.py).
Each line is a claim of :mod:`preprocess.recipes.check` once the spaces between digits and the
padding zeros are removed (:func:`check_digit_steps`); besides, the renderer asserts that the result
line's digits are those its columns computed.

Division and square root, precision policy: ``DECIMALS`` (2) decimals, from ``DECIMALS + 1`` derived
digits (long division / digit-by-digit root), rounded half up; a quotient whose remainder reaches 0
sooner is stated exactly. The contest's references carry 16-28 significant digits that no step of a
target within the budget derives (one long-division line is ~25 SmolLM2 tokens); two decimals follow
the 2nd-placed team of the 2024 contest (1 decimal) plus one. Under the contest's ``exact`` rule a
non-terminating quotient or root is then marked wrong, as it was before: only quotients that end
within two decimals can be right; under the teams' ``fewer_decimals`` scorers the rounded answer
counts. Multiplication, power and the other categories keep their ``steps`` recipes (multiplication's
partial products exceed seq_length 256 and then train on the expression alone, the pot_cot fallback).
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from ..answer.numeric import negate_literal, paren, plain
from .check import check_steps
from .columns import add_columns, subtract_columns
from .division import long_division, root_digits, scaled_pair

DECIMALS = 2
INT_DIGITS, FRACTION_DIGITS = 5, 2
_BETWEEN_DIGITS = re.compile(r"(?<=\d) (?=\d)")
_PADDING = re.compile(r"(?<![\d.])0+(?=\d)")


def spaced(literal: str) -> str:
    """``literal`` with a space between adjacent digits (``-9346.46`` -> ``-9 3 4 6.4 6``)."""
    return re.sub(r"(?<=\d)(?=\d)", " ", literal)


def check_digit_steps(lines: list[str]) -> None:
    """Verify every line (:func:`preprocess.recipes.check.check_steps`) with spaced digits joined
    and leading padding zeros dropped (``0 3 4.5 0`` reads ``34.50``, ``03-1-0=2`` reads ``3-1-0=2``).

    Raises:
        StepError: naming the first false or unreadable line.
    """
    check_steps([_PADDING.sub("", _BETWEEN_DIGITS.sub("", line)) for line in lines])


def _fixed_width(x: Decimal, y: Decimal) -> tuple[str, str, int]:
    """``x, y >= 0`` as digit strings of one width (at least ``INT_DIGITS + FRACTION_DIGITS``, and
    one digit more than the longer operand) and the number of decimals among those digits."""
    places = max(FRACTION_DIGITS, -x.as_tuple().exponent, -y.as_tuple().exponent)
    xs, ys = (str(int(v.scaleb(places))) for v in (x, y))
    width = max(INT_DIGITS + places, max(len(xs), len(ys)) + 1)
    return xs.zfill(width), ys.zfill(width), places


def _literal(digits: str, places: int) -> str:
    """Fixed-width ``digits`` with the point ``places`` from the end, spaced (``0 3 4 4 4.7 8``)."""
    return spaced(f"{digits[:-places]}.{digits[-places:]}" if places else digits)


def fixed_add(xs: str, ys: str) -> list[str]:
    """Column lines ``a+b+c=ss`` of two equal-width digit strings, last column first."""
    return [f"{a}+{b}+{c}={s:02d}" for a, b, c, s in add_columns(xs, ys)]


def fixed_subtract(xs: str, ys: str) -> list[str]:
    """Column lines ``Ba-b-c=d`` of ``xs - ys`` (``xs >= ys``, equal width), last column first."""
    return [f"{out}{a}-{b}-{c}={d}" for a, b, c, out, d in subtract_columns(xs, ys)]


def signed_columns(expr: str, a_lit: str, b_lit: str, answer: str) -> list[str]:
    """Lines computing ``expr == a + b`` for signed literals ``a_lit, b_lit`` (see the module doc).

    Same signs add the magnitudes and keep the sign; different signs subtract the smaller magnitude
    from the larger and take the larger one's sign.

    Raises:
        ValueError: ``answer`` is not the value the columns compute.
    """
    a, b = Decimal(a_lit), Decimal(b_lit)
    x, y = abs(a), abs(b)
    if (a < 0) == (b < 0) or a == 0 or b == 0:
        op, negative = "+", a < 0 or b < 0
    else:
        (x, y), negative = ((x, y), a < 0) if x >= y else ((y, x), b < 0)
        op = "-"
    xs, ys, places = _fixed_width(x, y)
    columns = fixed_add(xs, ys) if op == "+" else fixed_subtract(xs, ys)
    digits = "".join(line[-1] for line in reversed(columns))
    value = (x + y) if op == "+" else (x - y)
    if Decimal(digits).scaleb(-places) != value or Decimal(answer) != (-value if negative else value):
        raise ValueError(f"columns of {expr} give {digits}, not the answer {answer}")
    mag = op.join(_literal(s, places) for s in (xs, ys))
    sign = "-" if negative and value else ""
    return [f"{expr}={'-(' + mag + ')' if sign else mag}", *columns, f"{sign}{_literal(digits, places)}={answer}"]


def _addition(m, answer: str) -> list[str]:
    return signed_columns(f"{m['a']}+{paren(m['b'])}", m["a"], m["b"], answer)


def _subtraction(m, answer: str) -> list[str]:
    return signed_columns(f"{m['a']}-{paren(m['b'])}", m["a"], negate_literal(m["b"]), answer)


def _rounded(derived: Decimal, exact: bool) -> str:
    """The stated result: ``derived`` itself when it is exact, else rounded half up to DECIMALS."""
    return plain(derived.normalize()) if exact else plain(derived.quantize(Decimal(1).scaleb(-DECIMALS), ROUND_HALF_UP))


def _division(m, answer: str) -> list[str]:
    a, b = Decimal(m["a"]), Decimal(m["b"])
    num, den = scaled_pair(abs(a), abs(b))
    lines = long_division(num, den, DECIMALS + 1)
    digits = [line.split("=", 1)[1].split("*", 1)[0] for line in lines]
    derived = Decimal(f"{digits[0]}.{''.join(digits[1:]) or '0'}")
    exact = lines[-1].endswith("+0")
    neg = (a < 0) != (b < 0) and a != 0
    result = ("-" if neg else "") + _rounded(derived, exact)
    head = f"{m['a']}/{paren(m['b'])}={'-' if neg else ''}{num}/{den}"
    return [head, *lines, f"{m['a']}/{paren(m['b'])}{'=' if exact else '≈'}{result}"]


def _square_root(m, answer: str) -> list[str]:
    x = Decimal(m["a"])
    lines = root_digits(x, DECIMALS + 1)
    low = Decimal(lines[-1].split("**", 1)[0])
    exact = low * low == x
    return [*lines, f"√{m['a']}{'=' if exact else '≈'}{_rounded(low, exact)}"]


RECIPES = {
    "addition": _addition,
    "subtraction": _subtraction,
    "division": _division,
    "square_root": _square_root,
}
