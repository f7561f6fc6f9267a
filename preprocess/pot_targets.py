"""Program-of-thought training targets for the contest's computational categories.

A target is two lines: one restating the computation, then ``算式：EXPR`` in the language of
:mod:`preprocess.answer.pot`, e.g. for "计算 -719.49 的 2 次方？"::

    底数 -719.49 是负数，加括号后乘方。
    算式：(-719.49)**2

Operands are copied from the problem as written. Every target is checked: its expression is
evaluated by :func:`preprocess.answer.pot.evaluate` and must give the verified answer — exactly for the
28-digit decimal categories, to float precision (:func:`preprocess.answer.numeric.float_close`) for the
categories the contest rendered from floats, and as the same lowest-terms fraction for
``simplify``. English, logic, word problems and ``other`` have no PoT target.
"""
from __future__ import annotations

from fractions import Fraction

from .classify import PATTERNS
from .answer.numeric import FLOAT_CATEGORIES, float_close
from .answer.pot import MARKER, PotError, evaluate, render

POT_CATEGORIES = tuple(PATTERNS)


def _p(literal: str) -> str:
    return f"({literal})" if literal.startswith("-") else literal


# (restating line, expression) per category, formatted with the fields of :func:`_fields`.
_TEMPLATES: dict[str, tuple[str, str]] = {
    "addition": ("两数相加。", "{a} + {pb}"),
    "subtraction": ("被减数减去减数。", "{a} - {pb}"),
    "multiplication": ("两数相乘。", "{a} * {pb}"),
    "division": ("被除数除以除数。", "{a} / {pb}"),
    "square_root": ("求 {a} 的平方根。", "sqrt({a})"),
    "power": ("底数 {a} {power_note}。", "{pa}**{n}"),
    "linear_equation": ("解一元一次方程。", "solve({a}*x + {pb} = 0)"),
    "function_value": ("把 x = {x} 代入 y = {a}x^{n}。", "{a} * {px}**{n}"),
    "mean": ("数据共 {count} 个，求和后除以个数。", "({total}) / {count}"),
    "area": ("面积 = 长 × 宽。", "{a} * {b}"),
    "mass": ("质量 = 密度 × 体积。", "{a} * {b}"),
    "sales": ("今年销售额 = 去年销售额 × (1 + 增长率)。", "{a} * (1 + {b} / 100)"),
    "discount": ("折扣比例 = (原价 - 现价) / 原价 × 100。", "({a} - {b}) / {a} * 100"),
    "simplify": ("约分到最简分数。", "frac({a}, {b})"),
}


def _fields(groups: dict[str, str]) -> dict[str, str]:
    """The problem's operands as written, and the parenthesised/derived forms the templates use."""
    f = {k: v for k, v in groups.items() if v is not None}
    for name in ("a", "b", "x"):
        if name in f:
            f[f"p{name}"] = _p(f[name])
    if "xs" in f:
        xs = f["xs"].split(", ")
        f.update(count=str(len(xs)), total=" + ".join(map(_p, xs)))
    f["power_note"] = "是负数，加括号后乘方" if f.get("a", "").startswith("-") else "乘方"
    return f


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
    if category not in _TEMPLATES:
        raise ValueError(f"no PoT target for category {category!r}; PoT covers {POT_CATEGORIES}")
    m = PATTERNS[category].fullmatch(problem.strip())
    if m is None:
        raise ValueError(f"problem does not match the {category} format: {problem!r}")
    line, expr = (t.format(**_fields(m.groupdict())) for t in _TEMPLATES[category])
    try:
        value = evaluate(expr)
    except PotError as exc:
        raise ValueError(f"PoT expression {expr!r} fails: {exc}") from None
    if not answer_matches(value, answer, category):
        raise ValueError(f"PoT expression {expr!r} gives {render(value)}, not the answer {answer}")
    return f"{line}\n{MARKER}{expr}"
