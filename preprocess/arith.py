"""Exact, safe evaluation of the small arithmetic expressions in GSM8K calculator annotations.

GSM8K solutions mark each calculation as ``<<48/2=24>>`` (openai/grade-school-math,
``grade_school_math/data``). Checking these is the only verification possible for a word
problem, because its answer cannot be re-derived from the question text by rule.
Evaluation walks Python's AST and admits only numbers, + - * / // % ** and parentheses,
so no data file can make it run code; it uses ``Fraction`` so 0.1 + 0.2 == 0.3 exactly, and number
literals are read from their source text, so ``1144734386.17063696`` keeps all its digits (a float
would keep 17).
"""
from __future__ import annotations

import ast
import operator
from fractions import Fraction

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
# Exponents above this would let a hostile line allocate huge integers.
_MAX_EXPONENT = 1000
# Bound on every intermediate numerator and denominator: ~300 digits, far beyond any grade-school
# calculation, and small enough that float() of a result cannot overflow.
_MAX_BITS = 1000


def eval_arithmetic(expr: str) -> Fraction:
    """Evaluate ``expr`` exactly. Thousands separators (``1,000``) are accepted.

    Raises:
        ValueError: syntax error, a disallowed construct, a non-integer or huge exponent, a value
            beyond ``_MAX_BITS`` bits (``10**400``, ``(9**1000)**1000``: refused before computing),
            nesting too deep to parse, or division by zero.
    """
    text = expr.replace(",", "").strip()
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        # SyntaxError also covers integer literals over Python's 4300-digit limit.
        raise ValueError(f"not an arithmetic expression: {_short(expr)}") from exc
    try:
        return _eval(tree.body, text)
    except ZeroDivisionError as exc:
        raise ValueError(f"division by zero in {_short(expr)}") from exc
    except RecursionError as exc:
        raise ValueError(f"expression nested too deeply: {_short(expr)}") from exc


def _short(expr: str) -> str:
    return repr(expr if len(expr) <= 80 else expr[:77] + "...")


def _bounded(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > _MAX_BITS or value.denominator.bit_length() > _MAX_BITS:
        raise ValueError(f"value too large (over {_MAX_BITS} bits)")
    return value


def _eval(node: ast.AST, text: str) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        # The literal as written: 0.1 is 1/10 (not the binary float's value), and every digit of
        # 1144734386.17063696 counts (a float keeps 17). Exponents are checked before 10**e is built.
        literal = ast.get_source_segment(text, node).replace("_", "")
        exponent = literal.lower().partition("e")[2]
        if exponent and abs(int(exponent)) > _MAX_BITS:
            raise ValueError(f"value too large (over {_MAX_BITS} bits)")
        return _bounded(Fraction(literal))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _eval(node.operand, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, text), _eval(node.right, text)
        if isinstance(node.op, ast.Pow):
            if right.denominator != 1 or abs(right) > _MAX_EXPONENT:
                raise ValueError(f"unsupported exponent {right}")
            # Size check before the power: (9**1000)**1000 would take hours to compute.
            if max(left.numerator.bit_length(), left.denominator.bit_length()) * abs(int(right)) > 2 * _MAX_BITS:
                raise ValueError(f"value too large (over {_MAX_BITS} bits)")
            return _bounded(left ** int(right))
        op = _BINARY.get(type(node.op))
        if op is not None:
            return _bounded(Fraction(op(left, right)))
    raise ValueError(f"disallowed expression element {type(node).__name__}")
