"""Chain-of-thought synthesis with independent verification of the reference answer.

For every computational category the answer is re-derived from the *problem text alone*,
with the same arithmetic the contest generator used (``/work/shared/data/README.md``):
``decimal`` at its default 28-digit context for the four operations, square root, power
and function value (compared exactly, as ``Decimal`` values, so ``-2344.7`` equals
``-2344.70``). Linear equation (``-b/a``), mean (``sum/len``), discount (``(a-b)/a*100``)
and sales were rendered from Python ``float``s: there the given answer is compared with the
exact rational value and must agree to float precision (relative 2**-50). Sales is not
rounded: the real sample has ``12``, ``77%`` -> ``21.240000000000002``, which is
``repr(12 * (1 + 77/100))``; ``a + a*b/100`` gives the same 9 sample answers, so the check
accepts any float evaluation order. sympy independently re-checks linear_equation,
simplify and function_value with exact rationals.
 A verified item gets a short Chinese step-by-step
CoT whose last line is exactly the given solution, so the CoT's final number is the
reference answer; an unverified item's ``cot`` is the bare solution, so no training text
ever argues for a number that disagrees with its last line.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import InvalidOperation
from fractions import Fraction

from .arith import eval_arithmetic
from .classify import CATEGORIES, PATTERNS, option_labels
from .answer.boxed import gsm8k_final, last_boxed
from .answer.numeric import NUMBER_RE, contest_context, last_number
from .recipes import StepError
from .recipes.classic import BUILDERS
from .recipes.rederive import Mismatch
from .styles import COT_STYLE, COT_STYLES


@dataclass(frozen=True)
class CotResult:
    """Outcome of :func:`synthesize`.

    Attributes:
        cot: the training target. Computational categories: step-by-step text whose last
            line is the given solution (stripped). english/logic/other and every failure:
            the solution unchanged. word_problem: the solution without GSM8K's
            ``<<expr=value>>`` calculator annotations.
        answer: the final answer parsed from the given solution, as a plain string
            ("-3072.37", "5/6", "A", the boxed LaTeX for english); "" when none was found.
        verified: True when the given answer agrees with the re-derived one.
        reason: "" when verified, otherwise why not (names both values on a mismatch).
    """

    cot: str
    answer: str
    verified: bool
    reason: str = ""


# Solution shapes per category; a solution that misses its shape falls back to its last number.
_N = NUMBER_RE
_SOLUTION_PATTERNS: dict[str, re.Pattern[str]] = {
    "addition": re.compile(rf"(?P<a>{_N}) \+ (?P<b>{_N}) = (?P<ans>{_N})"),
    "subtraction": re.compile(rf"(?P<a>{_N}) - (?P<b>{_N}) = (?P<ans>{_N})"),
    "multiplication": re.compile(rf"(?P<a>{_N}) \* (?P<b>{_N}) = (?P<ans>{_N})"),
    "division": re.compile(rf"(?P<a>{_N}) / (?P<b>{_N}) = (?P<ans>{_N})"),
    "square_root": re.compile(rf"√(?P<a>{_N}) = (?P<ans>{_N})"),
    "power": re.compile(rf"(?P<a>{_N})\^(?P<n>\d+) = (?P<ans>{_N})"),
    "linear_equation": re.compile(rf"方程的解为：(?P<ans>{_N})"),
    "function_value": re.compile(rf"函数的值为：(?P<ans>{_N})"),
    "mean": re.compile(rf"平均值为 (?P<ans>{_N})"),
    "area": re.compile(rf"面积为 (?P<ans>{_N}) 平方厘米"),
    "mass": re.compile(rf"(?P<ans>{_N}) 克"),
    "sales": re.compile(rf"(?P<ans>{_N})"),
    "discount": re.compile(rf"(?P<ans>{_N})"),
    "simplify": re.compile(r"最简化的形式为：(?P<ans>-?\d+/\d+)"),
}
_FRACTION = re.compile(r"(-?\d+)\s*/\s*(\d+)(?!.*\d)", re.S)


def synthesize(problem: str, solution: str, category: str, style: str = "classic") -> CotResult:
    """Verify ``solution`` against ``problem`` and build the CoT training text.

    Args:
        problem: question text (contest format for the computational categories).
        solution: reference solution as given in the data.
        category: one of ``classify.CATEGORIES`` (normally ``classify(problem, solution)``).
        style: one of ``styles.COT_STYLES``: ``classic`` (the Chinese explanation ending with the
            solution line), ``steps`` or ``digits`` (``preprocess.recipes``: every line a claim that is
            re-computed; an item whose recipe fails that check is returned unverified with the failing line).
            Only the 14 computational categories have styles; the others are the same in both.

    Returns:
        A :class:`CotResult`; ``verified`` is False (with ``reason``) when the problem does not
        have the category's shape, the solution has no parsable answer, or the numbers differ.
        ``other`` is never verified (reason "no verifier for category other").

    Raises:
        ValueError: ``category`` is not in ``CATEGORIES`` or ``style`` not in ``styles.COT_STYLES``.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    if style not in COT_STYLE:
        raise ValueError(f"unknown style {style!r}; expected one of {COT_STYLES}")
    if category == "other":
        return CotResult(solution, last_number(solution) or "", False, "no verifier for category other")
    if category == "english":
        return _english(solution)
    if category == "word_problem":
        return _word_problem(solution)
    if category == "logic":
        return _logic(problem, solution)

    m = PATTERNS[category].fullmatch(problem.strip())
    if m is None:
        return CotResult(solution, "", False, f"problem does not match the {category} format")
    given = solution.strip()
    sm = _SOLUTION_PATTERNS[category].fullmatch(given)
    if sm is not None:
        answer = sm.group("ans")
    elif category == "simplify":
        fm = _FRACTION.search(given)
        answer = f"{fm.group(1)}/{fm.group(2)}" if fm else None
    else:
        answer = last_number(given)
    if not answer:
        return CotResult(solution, "", False, f"no {category} answer found in solution {given!r}")
    try:
        # Every builder runs in the contest context, so even incidental Decimal operations
        # (abs, scaleb, display sums) cannot be affected by the caller's decimal settings.
        with contest_context():
            lines = COT_STYLE[style].lines(category, m, answer, BUILDERS[category](m, answer, sm), given)
    except Mismatch as exc:
        return CotResult(solution, answer, False, str(exc))
    except StepError as exc:
        return CotResult(solution, answer, False, f"{category} recipe: {exc}")
    except (InvalidOperation, ArithmeticError, ValueError) as exc:
        return CotResult(solution, answer, False, f"cannot re-derive {category}: {exc!r}")
    return CotResult("\n".join(lines), answer, True, "")


# --------------------------------------------------------------------------- free-form categories


def _english(solution: str) -> CotResult:
    boxed = last_boxed(solution)
    if boxed is None:
        return CotResult(solution, "", False, "no \\boxed{} answer in the solution")
    if not boxed:
        return CotResult(solution, "", False, "empty \\boxed{} in the solution")
    return CotResult(solution, boxed, True, "")


_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_FINAL_NUMBER = re.compile(NUMBER_RE)


def _word_problem(solution: str) -> CotResult:
    final = gsm8k_final(solution)
    if final is None:
        return CotResult(solution, "", False, "no '#### answer' line in the solution")
    # nan, Infinity and 1e309 pass float() but are no answer a model can be scored against.
    if not _FINAL_NUMBER.fullmatch(final) or not math.isfinite(float(final)):
        return CotResult(solution, final, False, f"final answer {final[:40]!r} is not a finite number")
    for ann in _ANNOTATION.findall(solution):
        expr, eq, shown = ann.rpartition("=")
        if not eq:
            return CotResult(solution, final, False, f"calculator annotation <<{ann}>> has no '='")
        try:
            value, claimed = eval_arithmetic(expr), eval_arithmetic(shown)
        except ValueError as exc:
            return CotResult(solution, final, False, f"annotation <<{ann}>>: {exc}")
        # An annotation may round its result; accept it when it is the value rounded to the
        # decimals it shows.
        decimals = len(shown.strip().partition(".")[2])
        if abs(value - claimed) > Fraction(1, 2 * 10**decimals):
            return CotResult(
                solution, final, False, f"annotation <<{ann}>>: {expr} = {float(value)!r}, not {shown}"
            )
    return CotResult(_ANNOTATION.sub("", solution), final, True, "")


_LETTER = re.compile(r"(?<![A-Za-z])([A-H])(?![A-Za-z])")


def _logic(problem: str, solution: str) -> CotResult:
    letters = _LETTER.findall(solution)
    if not letters:
        return CotResult(solution, "", False, "no option letter (A-H) in the solution")
    answer = letters[-1]
    labels = option_labels(problem)
    if answer not in labels:
        return CotResult(solution, answer, False, f"answer {answer} is not one of the options {labels}")
    return CotResult(solution, answer, True, "")
