"""Per-category rounding of verified answers in the training targets.

The contest's reference answers carry up to 28 significant digits (``decimal`` default
context, ``/work/shared/data/README.md``); a small model cannot learn to reproduce them, and
winning teams of the 2024 contest trained on some categories rounded to 2 decimals. Rounding
is applied after verification, so the check always compares the unrounded reference answer.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .answer.numeric import contest_context, plain


def round_answer(answer: str, decimals: int) -> str:
    """Round the number ``answer`` half-up to ``decimals`` places, without exponent.

    Trailing zeros are kept (``2.5`` at 2 places is ``2.50``), as a contest answer would show them.

    Raises:
        ValueError: ``answer`` is not a number or ``decimals`` is negative.
    """
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")
    try:
        value = Decimal(answer.strip())
    except InvalidOperation:
        raise ValueError(f"answer {answer!r} is not a number") from None
    with contest_context() as ctx:
        ctx.prec = max(ctx.prec, value.adjusted() + decimals + 2)
        out = plain(value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
    return "0" + out[2:] if out.startswith("-0") and Decimal(out) == 0 else out


def apply_rounding(cot: str, answer: str, decimals: int, approximate: bool = False) -> tuple[str, str]:
    """Return ``(cot, answer)`` with the answer rounded and its last occurrence in ``cot`` replaced.

    The CoT's final line states the answer, so replacing its last occurrence keeps the text and
    the answer field in agreement. When ``answer`` does not occur in ``cot`` a line stating the
    rounded value is appended. With ``approximate`` (``steps`` targets, whose every line is a claim
    that ``preprocess.recipes.check`` verifies) an ``=`` right before the answer becomes ``≈``, so
    the final claim stays true: ``-(9991.13+796.39)≈-10787.5``.

    Raises:
        ValueError: as :func:`round_answer`.
    """
    rounded = round_answer(answer, decimals)
    head, sep, tail = cot.rpartition(answer)
    if not sep:
        return f"{cot}\n保留 {decimals} 位小数：{rounded}", rounded
    if approximate and head.endswith("="):
        head = head[:-1] + "≈"
    return f"{head}{rounded}{tail}", rounded
