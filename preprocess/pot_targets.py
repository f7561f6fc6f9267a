"""Program-of-thought training targets for the contest's computational categories.

A target is two lines: one restating the computation, then ``算式：EXPR`` in the language of
:mod:`preprocess.pot`, e.g. for "计算 -719.49 的 2 次方？"::

    底数 -719.49 是负数，加括号后乘方。
    算式：(-719.49)**2

Operands are copied from the problem as written. Every target is checked: its expression is
evaluated by :func:`preprocess.pot.evaluate` and must give the verified answer — exactly for the
28-digit decimal categories, to float precision (:func:`preprocess.numeric.float_close`) for the
categories the contest rendered from floats, and as the same lowest-terms fraction for
``simplify``. English, logic, word problems and ``other`` have no PoT target.
"""
from __future__ import annotations

from fractions import Fraction

from .classify import PATTERNS
from .numeric import FLOAT_CATEGORIES, float_close
from .pot import MARKER, PotError, evaluate, render

POT_CATEGORIES = tuple(PATTERNS)


def _p(literal: str) -> str:
    return f"({literal})" if literal.startswith("-") else literal


def _expression(category: str, g: dict[str, str]) -> tuple[str, str]:
    """``(restating line, expression)`` for the problem's named groups ``g``."""
    a, b = g.get("a"), g.get("b")
    if category == "addition":
        return "两数相加。", f"{a} + {_p(b)}"
    if category == "subtraction":
        return "被减数减去减数。", f"{a} - {_p(b)}"
    if category == "multiplication":
        return "两数相乘。", f"{a} * {_p(b)}"
    if category == "division":
        return "被除数除以除数。", f"{a} / {_p(b)}"
    if category == "square_root":
        return f"求 {a} 的平方根。", f"sqrt({a})"
    if category == "power":
        note = "是负数，加括号后乘方" if a.startswith("-") else "乘方"
        return f"底数 {a} {note}。", f"{_p(a)}**{g['n']}"
    if category == "linear_equation":
        return "解一元一次方程。", f"solve({a}*x + {_p(b)} = 0)"
    if category == "function_value":
        return f"把 x = {g['x']} 代入 y = {a}x^{g['n']}。", f"{a} * {_p(g['x'])}**{g['n']}"
    if category == "mean":
        xs = g["xs"].split(", ")
        return f"数据共 {len(xs)} 个，求和后除以个数。", f"({' + '.join(map(_p, xs))}) / {len(xs)}"
    if category == "area":
        return "面积 = 长 × 宽。", f"{a} * {b}"
    if category == "mass":
        return "质量 = 密度 × 体积。", f"{a} * {b}"
    if category == "sales":
        return "今年销售额 = 去年销售额 × (1 + 增长率)。", f"{a} * (1 + {b} / 100)"
    if category == "discount":
        return "折扣比例 = (原价 - 现价) / 原价 × 100。", f"({a} - {b}) / {a} * 100"
    if category == "simplify":
        return "约分到最简分数。", f"frac({a}, {b})"
    raise ValueError(f"no PoT target for category {category!r}; PoT covers {POT_CATEGORIES}")


def answer_matches(value, answer: str, category: str) -> bool:
    """Whether an evaluated PoT ``value`` gives the verified ``answer`` of a ``category`` item
    (exact; float precision for ``FLOAT_CATEGORIES``; the lowest-terms fraction for simplify)."""
    if category == "simplify":
        return render(value) == answer.strip()
    try:
        given = Fraction(answer.strip())
    except ValueError:
        return False
    exact = Fraction(value)
    return float_close(exact, given) if category in FLOAT_CATEGORIES else exact == given


def pot_target(problem: str, answer: str, category: str) -> str:
    """Return the verified PoT target of a contest item.

    Args:
        problem: the contest problem text (it must have the category's shape).
        answer: the item's verified answer (``CotResult.answer``).
        category: one of ``POT_CATEGORIES``.

    Raises:
        ValueError: a category without PoT targets, a problem not of the category's shape, or an
            expression whose value does not give ``answer`` (the message shows both).
    """
    m = PATTERNS[category].fullmatch(problem.strip()) if category in PATTERNS else None
    if category in PATTERNS and m is None:
        raise ValueError(f"problem does not match the {category} format: {problem!r}")
    line, expr = _expression(category, m.groupdict() if m else {})
    try:
        value = evaluate(expr)
    except PotError as exc:
        raise ValueError(f"PoT expression {expr!r} fails: {exc}") from None
    if not answer_matches(value, answer, category):
        raise ValueError(f"PoT expression {expr!r} gives {render(value)}, not the answer {answer}")
    return f"{line}\n{MARKER}{expr}"
