"""Pull the final answer out of a model's free-form reasoning and turn answer strings into numbers.

Rules and where they come from:

* ``\\boxed{...}`` wins when present. The English items of the contest's train.json are
  Hendrycks-MATH solutions whose answer is the content of the last ``\\boxed{}`` (the MATH
  convention), so a model trained on them writes its answer the same way.
* Otherwise the answer is the last number in the text. Every Chinese solution in the contest data
  ends with its result ("... = -4584.53", "方程的解为：0.51...", "平均值为 54.75", "面积为 5723 平方厘米",
  or the bare number for sales/discount items), see ``shared/data/ascend2024_math/sample_dev.jsonl``.
* Number forms accepted are those the contest data and typical CoT outputs use: integers, decimals,
  a leading minus (ASCII ``-`` or Unicode ``−``), scientific notation as Python's ``decimal`` prints
  it (``2.854155448324274205322988364E+85``, ``7.07E-23``), integer fractions ``5/6`` (the
  "simplify" category), thousands separators ``1,234.5`` and ``\\frac{a}{b}`` / ``\\dfrac`` / ``\\tfrac``.

Cutting the text at an end-of-answer marker is not done here: generation stops at EOS.
"""
from __future__ import annotations

import re
from fractions import Fraction

from preprocess.answer.boxed import boxed_contents

# A minus sign belongs to the number only when it cannot be a binary operator, i.e. it is not
# preceded by an operand ("5-3" ends with the number 3, not -3). ASCII-only classes on purpose:
# Python's \w matches CJK, and "方程的解为-1.3" must keep its sign.
_SIGN = r"(?:(?<![0-9A-Za-z)\]}.])[-\u2212])?"
_UNSIGNED = (
    r"(?:\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?"  # 1,234 / 1,234.5 (exactly three digits per group)
    r"|\d+\.\d+|\.\d+|\d+)"
    r"(?:[eE][-+]?\d+)?"
)
_INT_FRAC = r"\d+/\d+(?![\d.])"
_TEX_FRAC = r"\\[dt]?frac\s*\{\s*-?[\d.]+\s*\}\s*\{\s*-?[\d.]+\s*\}"
# Fractions are tried before plain numbers so "5/6" is one token, not "5" then "6". Digits glued
# to letters or other digits on the left are not the start of a number ("x2", "E+85" handled by
# the exponent group above).
_NUMBER_RE = re.compile(
    rf"{_SIGN}(?:{_TEX_FRAC}|(?<![\dA-Za-z.,/]){_INT_FRAC}|(?<![\dA-Za-z.]){_UNSIGNED})"
)

def find_numbers(text: str) -> list[str]:
    """Return every number-like token of ``text`` in order of appearance (see module rules)."""
    return [m.group(0) for m in _NUMBER_RE.finditer(text)]


def extract_answer(text: str | None) -> str | None:
    """Return the final answer written in ``text``.

    Args:
        text: the model's output (or a reference solution).

    Returns:
        The content of the last complete ``\\boxed{}`` if there is one, else the last number
        token exactly as written (thousands separators and all; :func:`to_number` reads it),
        else ``None`` (also for ``None`` or empty input).
    """
    if not text:
        return None
    boxes = [b for b in boxed_contents(text) if b]
    if boxes:
        return boxes[-1]
    numbers = find_numbers(text)
    return numbers[-1] if numbers else None


_PLAIN_NUMBER_RE = re.compile(
    r"[-+]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
)
_PLAIN_FRAC_RE = re.compile(r"([-+]?)(\d+)/(\d+)")
_TEX_FRAC_FULL_RE = re.compile(r"([-+]?)\\frac\{([^{}]+)\}\{([^{}]+)\}")
_TEX_FRAC_SHORT_RE = re.compile(r"([-+]?)\\frac(\d)(\d)")  # \frac12, as MATH solutions write it
_TEXT_WRAPPER_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


def strip_decorations(s: str) -> str:
    """Remove what does not change a numeric value: math delimiters, spacing commands, degree and
    percent signs, ``\\left``/``\\right``, a trailing full stop.

    Percent signs are dropped without dividing by 100 because the contest's discount-ratio
    references are already percentages ("11.267605633802818" for 71 → 63 元).
    """
    s = s.strip()
    s = s.replace("\u2212", "-").replace("$", "")
    s = _TEXT_WRAPPER_RE.sub(r"\1", s)
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\ ", "\\displaystyle"):
        s = s.replace(token, "")
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)
    s = re.sub(r"\\?%", "", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\s+", "", s)
    s = s.rstrip(".")
    # A wholly parenthesised value, e.g. "(-3)".
    if s.startswith("(") and s.endswith(")") and s.count("(") == 1:
        s = s[1:-1]
    return s


def _plain(s: str) -> Fraction | None:
    if not _PLAIN_NUMBER_RE.fullmatch(s):
        return None
    return Fraction(s.replace(",", ""))


def to_number(s: str | None) -> Fraction | None:
    """Parse an answer string into an exact rational number.

    Decimal strings become exact fractions (``"0.1"`` is 1/10, not the nearest float), so the
    contest's 28-significant-digit results keep every digit.

    Accepted after removing decorations (``$``, spacing commands, ``^\\circ``, ``%``, a trailing
    ``.``): ``-3072.37``, ``5723``, ``1,234.5``, ``7.07E-23``, ``5/6``, ``-5/6``,
    ``\\frac{3}{4}``, ``-\\dfrac{1}{36}``, ``\\frac12``, ``(-3)``.

    Returns:
        The value, or ``None`` when ``s`` is ``None``, empty, not one of those forms
        (``7\\sqrt{5}``, ``x=3``) or a fraction with a zero denominator.
    """
    if s is None:
        return None
    t = strip_decorations(s)
    if not t:
        return None
    value = _plain(t)
    if value is not None:
        return value
    for pattern in (_PLAIN_FRAC_RE, _TEX_FRAC_FULL_RE, _TEX_FRAC_SHORT_RE):
        m = pattern.fullmatch(t)
        if m is None:
            continue
        num, den = _plain(m.group(2)), _plain(m.group(3))
        if num is None or den is None or den == 0:
            return None
        value = num / den
        return -value if m.group(1) == "-" else value
    return None
