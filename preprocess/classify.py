"""Rule-based category of a problem: one anchored regular expression per contest category.

The 14 Chinese computational shapes are copied character for character from the contest's
data (``/work/shared/data/ascend2024_math/sample_dev.jsonl`` and the category list in
``/work/shared/data/README.md``). A problem whose text deviates from a shape (different
wording, spacing or number type) is *not* forced into the nearest category: it falls
through to ``logic``, ``english``, ``word_problem`` or ``other``, so a category is always
one whose verifier can actually parse the problem.

Decision order (first rule that fires wins):
    1. the 14 contest regexes (full match on the stripped problem);
    2. ``word_problem`` when a solution is given and ends with GSM8K's ``#### answer`` line;
    3. ``logic`` for Chinese text listing at least options A and B, each at a line start;
    4. ``english`` for text with no CJK character and at least one English word
       (Hendrycks-MATH items; 8 of the 26 in the real sample have no LaTeX at all, so LaTeX
       cannot be required);
    5. ``other``.
"""
from __future__ import annotations

import re

CATEGORIES: tuple[str, ...] = (
    "english",
    "addition",
    "subtraction",
    "multiplication",
    "division",
    "square_root",
    "power",
    "linear_equation",
    "discount",
    "mean",
    "mass",
    "area",
    "sales",
    "simplify",
    "function_value",
    "logic",
    "word_problem",
    "other",
)

# The contest writes operands as optionally signed decimals ("-9740.24", "6.00", "5").
_NUM = r"-?\d+(?:\.\d+)?"
_INT = r"-?\d+"
_NAT = r"\d+"

# Group names are what cot.py reads; keep them in sync with its verifiers.
PATTERNS: dict[str, re.Pattern[str]] = {
    "addition": re.compile(rf"计算 (?P<a>{_NUM}) \+ (?P<b>{_NUM}) 等于多少？"),
    "subtraction": re.compile(rf"计算 (?P<a>{_NUM}) - (?P<b>{_NUM}) 等于多少？"),
    "multiplication": re.compile(rf"计算 (?P<a>{_NUM}) \* (?P<b>{_NUM}) 等于多少？"),
    "division": re.compile(rf"计算 (?P<a>{_NUM}) / (?P<b>{_NUM}) 等于多少？"),
    "square_root": re.compile(rf"计算 (?P<a>{_NUM}) 的平方根？"),
    "power": re.compile(rf"计算 (?P<a>{_NUM}) 的 (?P<n>{_NAT}) 次方？"),
    "linear_equation": re.compile(rf"解方程 (?P<a>{_INT})x \+ (?P<b>{_INT}) = 0"),
    "discount": re.compile(
        rf"商品原价为 (?P<a>{_NAT}) 元，打折后的价格为 (?P<b>{_NAT}) 元，请计算打折的折扣比例。"
    ),
    "mean": re.compile(rf"求以下数据的平均值：\[(?P<xs>{_INT}(?:, {_INT})*)\]"),
    "mass": re.compile(
        rf"某物体的密度为 (?P<a>{_NAT}) 克/立方厘米，体积为 (?P<b>{_NAT}) 立方厘米，请计算该物体的质量。"
    ),
    "area": re.compile(rf"一个长方形的长为 (?P<a>{_NAT}) 厘米，宽为 (?P<b>{_NAT}) 厘米，请计算其面积。"),
    "sales": re.compile(
        rf"去年销售额为 (?P<a>{_NAT}) 万元，今年销售额增加了 (?P<b>{_NAT})%，请计算今年的销售额。"
    ),
    "simplify": re.compile(rf"将分数 (?P<a>{_NAT})/(?P<b>{_NAT}) 进行简化。"),
    "function_value": re.compile(
        rf"当 x = (?P<x>{_NUM}) 时，求函数 y = (?P<a>{_INT})x\^(?P<n>{_NAT}) 的值"
    ),
}

# Han ideographs plus CJK/full-width punctuation: any of these means "not an English item".
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
_GSM8K_FINAL = re.compile(r"\n#### *\S[^\n]*\s*$")
# An option label at a line start: "A. ", "A、", "（A）", "(B) ", "C：".
_OPTION = re.compile(r"(?m)^[ \t]*[（(]?([A-H])[)）.．、:：]")


def option_labels(problem: str) -> list[str]:
    """Return the option letters (A-H) that start a line in ``problem``, in order of appearance."""
    return _OPTION.findall(problem)


def match_contest(problem: str) -> tuple[str, re.Match[str]] | None:
    """Return ``(category, match)`` for the contest shape ``problem`` has, or None.

    Only the 14 Chinese computational categories are tried; the match's named groups are
    the operands as written.
    """
    text = problem.strip()
    for category, pattern in PATTERNS.items():
        m = pattern.fullmatch(text)
        if m:
            return category, m
    return None


def classify(problem: str, solution: str | None = None) -> str:
    """Return the category of ``problem`` (one of ``CATEGORIES``).

    Args:
        problem: the question text as stored in the data file.
        solution: optional reference solution; only used to recognise GSM8K word problems,
            whose solutions end with a ``#### <answer>`` line (the problem text alone cannot
            tell a GSM8K question from a plain-English MATH question).

    Raises:
        TypeError: ``problem`` is not a string.
    """
    if not isinstance(problem, str):
        raise TypeError(f"problem must be str, got {type(problem).__name__}")
    hit = match_contest(problem)
    if hit:
        return hit[0]
    if solution is not None and _GSM8K_FINAL.search(solution):
        return "word_problem"
    labels = option_labels(problem)
    if _HAN.search(problem) and "A" in labels and "B" in labels:
        return "logic"
    if not _CJK.search(problem) and _ENGLISH_WORD.search(problem):
        return "english"
    return "other"
