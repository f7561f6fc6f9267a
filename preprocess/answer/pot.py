"""The program-of-thought (PoT) expression language and its safe evaluator.

A PoT answer ends with one line ``算式：EXPR`` (``MARKER``; an ASCII colon is accepted too); the
tool evaluates ``EXPR`` and the executed value is graded instead of a number the model wrote.

Language (a subset of Python expression syntax, so ``ast`` parses it):

* numbers: ``12``, ``-3828.45``, ``2.5E+3`` (at most ``MAX_LITERAL_DIGITS`` digits, exponent at
  most three digits);
* ``+ - * /`` and ``**`` with parentheses and unary minus, with Python's precedence: ``-a**n`` is
  ``-(a**n)``, so a power of a negative base — the contest's "计算 -719.49 的 2 次方" — is written
  ``(-719.49)**2``. Exponents must be integers with ``|n| <= MAX_EXPONENT``; ``^`` is refused;
* ``sqrt(e)``: the square root;
* ``frac(a, b)``: the exact fraction a/b in lowest terms (``frac(10, 12)`` is ``5/6``); fractions
  stay exact under ``+ - * /`` with integers and other fractions and under integer powers, and
  become 28-digit decimals when mixed with a non-integer decimal;
* one linear equation in ``x``: ``solve(LHS = RHS)``, e.g. ``solve(-39*x + 20 = 0)``; both sides
  must be linear in ``x`` (``x*x`` and ``sqrt`` are refused) and the value is the root.

Arithmetic is Python's ``decimal`` in the contest's context (28 significant digits, ROUND_HALF_EVEN,
:func:`preprocess.answer.numeric.contest_context`), operation by operation, so ``52 * 1.36**40`` gives the
reference's own digits (the contest generator computed ``Decimal(a) * x**n`` the same way). An
equation's root is exact (fractions) and then rounded to 28 digits.

Safety is by construction: the text is parsed with :func:`ast.parse` and every node is checked
against a whitelist before anything is evaluated; nothing is passed to ``eval``/``exec``. Names
other than ``x`` inside ``solve``, attributes, subscripts, calls other than ``sqrt``/``frac``,
keywords, comparisons, strings and every other node are refused. Input is bounded in length
(``MAX_LENGTH``), nesting (``MAX_DEPTH``), size (``MAX_NODES``), literal digits, exponent size,
fraction size (``MAX_FRACTION_BITS``) and time (``TIME_LIMIT_S``), so ``9**9**9`` is refused
rather than computed.
"""
from __future__ import annotations

import ast
import decimal
import re
import time
from decimal import Decimal
from fractions import Fraction

from preprocess.answer.numeric import contest_context

MARKER = "算式："
MAX_LENGTH = 500
MAX_DEPTH = 40
MAX_NODES = 300
MAX_LITERAL_DIGITS = 40
MAX_EXPONENT = 1000
MAX_FRACTION_BITS = 4096
TIME_LIMIT_S = 1.0

Value = Decimal | Fraction

_MARKER_RE = re.compile(r"算式[：:]")
_LITERAL_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([eE][-+]?\d{1,3})?")
_SOLVE_RE = re.compile(r"solve\((.*)\)", re.S)
_EXPR_EDGES = re.compile(r"^[\s`$]+|[\s`$。.]+$")
_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_FUNCTIONS = {"sqrt": 1, "frac": 2}


class PotError(ValueError):
    """An expression that is refused or cannot be evaluated.

    Attributes:
        stage: ``"parse"`` (not in the language, unsafe or oversized input) or ``"evaluate"``
            (division by zero, square root of a negative number, an exponent or result out of
            bounds, the time limit).
    """

    def __init__(self, stage: str, message: str):
        super().__init__(f"{stage}: {message}")
        self.stage = stage


def extract_expression(text: str | None) -> str | None:
    """Return the expression after the last ``算式：`` of ``text`` (to the end of that line,
    without a trailing full stop or backticks), or None when there is no such line."""
    if not text:
        return None
    found = list(_MARKER_RE.finditer(text))
    if not found:
        return None
    line = text[found[-1].end():].split("\n", 1)[0]
    return _EXPR_EDGES.sub("", line) or None


def evaluate(expr: str) -> Value:
    """Evaluate ``expr`` (module docstring language).

    Returns:
        A ``Decimal`` (28 significant digits) or, for exact fraction arithmetic, a ``Fraction``.

    Raises:
        PotError: ``stage="parse"`` for text outside the language or over a size bound,
            ``stage="evaluate"`` for a mathematical error or a bound hit while computing; the
            message names the offending part.
    """
    if not isinstance(expr, str):
        raise PotError("parse", f"expression must be a string, got {type(expr).__name__}")
    text = expr.strip()
    if not text:
        raise PotError("parse", "empty expression")
    if len(text) > MAX_LENGTH:
        raise PotError("parse", f"expression has {len(text)} characters, more than {MAX_LENGTH}")
    deadline = time.monotonic() + TIME_LIMIT_S
    m = _SOLVE_RE.fullmatch(text)
    if m is not None:
        sides = [side.strip() for side in m.group(1).split("=")]
        if len(sides) != 2 or "==" in m.group(1):
            raise PotError("parse", "solve(...) takes one equation 'LHS = RHS' with a single '='")
        (a1, b1), (a2, b2) = (_linear(_parse(side, variable=True), side, deadline) for side in sides)
        slope, const = a1 - a2, b1 - b2
        if slope == 0:
            raise PotError("evaluate", "the equation has no unique solution (x cancels out)")
        return _to_decimal(-const / slope)
    return _eval(_parse(text, variable=False), text, deadline)


def render(value: Value) -> str:
    """Render a value as the contest writes answers: ``str(Decimal)`` (``-4584.53``,
    ``2.854155448324274205322988364E+85``) or ``a/b`` for a fraction (``5/6``, ``3`` when b = 1)."""
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return str(value)


# --------------------------------------------------------------------------- parsing


def _parse(text: str, variable: bool) -> ast.expr:
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth > MAX_DEPTH:
            raise PotError("parse", f"parentheses nested more than {MAX_DEPTH} deep")
    if "^" in text:
        raise PotError("parse", "'^' is not an operator here; write powers as a**n")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise PotError("parse", f"not an expression: {text!r} ({type(exc).__name__})") from None
    _check(tree.body, text, variable)
    return tree.body


def _check(root: ast.expr, text: str, variable: bool) -> None:
    """Walk the tree iteratively (no recursion to exhaust) and refuse anything off the whitelist."""
    stack = [(root, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise PotError("parse", f"expression has more than {MAX_NODES} elements")
        if depth > MAX_DEPTH:
            raise PotError("parse", f"expression nested more than {MAX_DEPTH} deep")
        if isinstance(node, ast.Constant):
            _literal(node, text)
            continue
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _BINOPS):
                raise PotError("parse", f"operator {type(node.op).__name__} is not allowed (+ - * / ** only)")
            stack += [(node.left, depth + 1), (node.right, depth + 1)]
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.UAdd, ast.USub)):
                raise PotError("parse", f"unary {type(node.op).__name__} is not allowed")
            stack.append((node.operand, depth + 1))
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in _FUNCTIONS:
                shown = ast.get_source_segment(text, node.func) or type(node.func).__name__
                raise PotError("parse", f"call of {shown!r} is not allowed (only sqrt() and frac())")
            if node.keywords or len(node.args) != _FUNCTIONS[name] \
                    or any(isinstance(a, ast.Starred) for a in node.args):
                raise PotError("parse", f"{name}() takes {_FUNCTIONS[name]} plain argument(s)")
            stack += [(a, depth + 1) for a in node.args]
        elif isinstance(node, ast.Name):
            if not (variable and node.id == "x"):
                where = "" if variable else " (the unknown x only inside solve(...))"
                raise PotError("parse", f"name {node.id!r} is not allowed{where}")
        else:
            shown = ast.get_source_segment(text, node) or ""
            raise PotError("parse", f"{type(node).__name__} {shown!r} is not allowed")


def _literal(node: ast.Constant, text: str) -> None:
    source = ast.get_source_segment(text, node)
    if not isinstance(node.value, (int, float)) or isinstance(node.value, bool) or source is None:
        raise PotError("parse", f"literal {source or node.value!r} is not a number")
    m = _LITERAL_RE.fullmatch(source)
    if m is None:
        raise PotError("parse", f"number {source!r} is not written as digits")
    digits = len(m.group(1).replace(".", "").lstrip("0"))
    if digits > MAX_LITERAL_DIGITS:
        raise PotError("parse", f"number with {digits} digits, more than {MAX_LITERAL_DIGITS}")


# --------------------------------------------------------------------------- evaluation


def _number(node: ast.Constant, text: str) -> Decimal:
    return Decimal(ast.get_source_segment(text, node))


def _tick(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise PotError("evaluate", f"evaluation took longer than {TIME_LIMIT_S} s")


def _to_decimal(value: Value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    with contest_context():
        return Decimal(value.numerator) / Decimal(value.denominator)


def _exponent(value: Value) -> int:
    exact = Fraction(value)
    if exact.denominator != 1:
        raise PotError("evaluate", f"exponent {render(value)} is not an integer (use sqrt for roots)")
    if abs(exact) > MAX_EXPONENT:
        raise PotError("evaluate", f"exponent {exact} exceeds {MAX_EXPONENT}")
    return int(exact)


def _bits(value: Fraction) -> int:
    return max(value.numerator.bit_length(), value.denominator.bit_length())


def _bounded(value: Fraction) -> Fraction:
    if _bits(value) > MAX_FRACTION_BITS:
        raise PotError("evaluate", f"fraction too large ({_bits(value)} bits, limit {MAX_FRACTION_BITS})")
    return value


def _fraction_power(base: Fraction, n: int) -> Fraction:
    if _bits(base) * abs(n) > MAX_FRACTION_BITS:  # checked before computing, not after
        raise PotError("evaluate", f"fraction power too large (~{_bits(base) * abs(n)} bits, "
                                   f"limit {MAX_FRACTION_BITS})")
    if base == 0 and n <= 0:
        raise PotError("evaluate", f"0 to the power {n} is undefined")
    return base**n


def _exact(a: Value, b: Value) -> tuple[Fraction, Fraction] | None:
    """Both operands as fractions when one is a fraction and the other a fraction or an integer."""
    if not (isinstance(a, Fraction) or isinstance(b, Fraction)):
        return None
    if any(isinstance(v, Decimal) and v != v.to_integral_value() for v in (a, b)):
        return None
    return Fraction(a), Fraction(b)


def _eval(node: ast.expr, text: str, deadline: float) -> Value:
    _tick(deadline)
    try:
        with contest_context():
            if isinstance(node, ast.Constant):
                return _number(node, text)
            if isinstance(node, ast.UnaryOp):
                value = _eval(node.operand, text, deadline)
                return -value if isinstance(node.op, ast.USub) else +value
            if isinstance(node, ast.Call):
                args = [_eval(a, text, deadline) for a in node.args]
                if node.func.id == "sqrt":
                    root = _to_decimal(args[0])
                    if root < 0:
                        raise PotError("evaluate", f"sqrt of a negative number {render(args[0])}")
                    return root.sqrt()
                num, den = (Fraction(a) for a in args)
                if num.denominator != 1 or den.denominator != 1:
                    raise PotError("evaluate", "frac(a, b) takes integers")
                if den == 0:
                    raise PotError("evaluate", "frac(a, 0): denominator is zero")
                return num / den
            left, right = _eval(node.left, text, deadline), _eval(node.right, text, deadline)
            if isinstance(node.op, ast.Pow):
                n = _exponent(right)
                if isinstance(left, Fraction):
                    return _fraction_power(left, n)
                return left ** n
            exact = _exact(left, right)
            if exact is not None:
                if isinstance(node.op, ast.Div) and exact[1] == 0:
                    raise PotError("evaluate", "division by zero")
                return _bounded(_FRACTION_OPS[type(node.op)](*exact))
            return _FRACTION_OPS[type(node.op)](_to_decimal(left), _to_decimal(right))
    except ZeroDivisionError:
        raise PotError("evaluate", "division by zero") from None
    except decimal.DivisionByZero:
        raise PotError("evaluate", "division by zero") from None
    except decimal.Overflow:
        raise PotError("evaluate", "result too large for the 28-digit context") from None
    except decimal.InvalidOperation:
        shown = ast.get_source_segment(text, node) or text
        raise PotError("evaluate", f"undefined operation in {shown!r} (e.g. 0**0)") from None


_FRACTION_OPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _linear(node: ast.expr, text: str, deadline: float) -> tuple[Fraction, Fraction]:
    """``(a, b)`` with ``node == a*x + b`` exactly; refuses what is not linear in x."""
    _tick(deadline)
    if isinstance(node, ast.Name):
        return Fraction(1), Fraction(0)
    if isinstance(node, ast.Constant):
        return Fraction(0), Fraction(_number(node, text))
    if isinstance(node, ast.UnaryOp):
        a, b = _linear(node.operand, text, deadline)
        return (-a, -b) if isinstance(node.op, ast.USub) else (a, b)
    if isinstance(node, ast.Call):
        if node.func.id == "sqrt":
            raise PotError("parse", "sqrt() is not allowed inside solve(...): coefficients must be exact")
        (a1, num), (a2, den) = (_linear(arg, text, deadline) for arg in node.args)
        if a1 or a2 or num.denominator != 1 or den.denominator != 1 or den == 0:
            raise PotError("evaluate", "frac(a, b) in an equation takes integer constants, b != 0")
        return Fraction(0), num / den
    (a1, b1), (a2, b2) = _linear(node.left, text, deadline), _linear(node.right, text, deadline)
    op = type(node.op)
    if op is ast.Add:
        return a1 + a2, b1 + b2
    if op is ast.Sub:
        return a1 - a2, b1 - b2
    if op is ast.Mult:
        if a1 and a2:
            raise PotError("parse", "not a linear equation: x is multiplied by x")
        return a1 * b2 + a2 * b1, b1 * b2
    if op is ast.Div:
        if a2:
            raise PotError("parse", "not a linear equation: division by an expression in x")
        if b2 == 0:
            raise PotError("evaluate", "division by zero")
        return a1 / b2, b1 / b2
    if a1 or a2:
        raise PotError("parse", "not a linear equation: x in a power")
    return Fraction(0), _fraction_power(b1, _exponent(b2))


# The outcome of running a generation's expression (eval.pot counts the failures per category).
STATUSES = ("ok", "no_expression", "parse_failed", "eval_failed")


def execute(generation: str | None) -> tuple[str | None, str, str]:
    """Run the expression of ``generation``.

    Returns:
        ``(value, status, detail)``: the rendered value (``None`` unless ``status == "ok"``),
        one of ``STATUSES``, and the expression or the evaluator's reason.
    """
    expr = extract_expression(generation)
    if expr is None:
        return None, "no_expression", ""
    try:
        return render(evaluate(expr)), "ok", expr
    except PotError as exc:
        return None, "parse_failed" if exc.stage == "parse" else "eval_failed", str(exc)
