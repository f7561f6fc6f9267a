"""Exact deduplication on a normalized problem text.

The contest's train.json shrinks from 809,993 to 548,942 items under exact dedup
(``/work/shared/data/README.md``). Normalization additionally folds the differences that do
not change a problem's meaning: Unicode compatibility forms (full-width ``１２３``/``？``
vs ASCII, NFKC), runs of whitespace, and trailing zeros of decimal numbers (``1366.00``,
``1366.0`` and ``1366`` are one number, and the contest's answers compare numerically).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Callable, Iterable

_WHITESPACE = re.compile(r"\s+")
# A decimal with a fractional part, not glued to a longer dotted token such as a version
# string (1.2.3) or an identifier.
_DECIMAL = re.compile(r"(?<![\w.])(\d+)\.(\d+)(?!\w|\.\d)")


def _strip_fraction(m: re.Match[str]) -> str:
    frac = m.group(2).rstrip("0")
    return f"{m.group(1)}.{frac}" if frac else m.group(1)


def normalize(text: str) -> str:
    """Return the dedup key of ``text``.

    Steps: NFKC (full-width to half-width, compatibility characters), collapse every
    whitespace run to one space and strip the ends, drop trailing zeros of decimals
    (``2.50`` -> ``2.5``, ``1366.00`` -> ``1366``; integers such as ``100`` are untouched).

    Raises:
        TypeError: ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    text = _WHITESPACE.sub(" ", text).strip()
    return _DECIMAL.sub(_strip_fraction, text)


def dedup(
    records: Iterable[dict],
    key: Callable[[dict], str] = lambda r: r["problem"],
) -> tuple[list[dict], int]:
    """Drop records whose normalized problem was already seen.

    Args:
        records: dicts with a ``problem`` string (or whatever ``key`` reads).
        key: returns the text to normalize; defaults to ``record["problem"]``.

    Returns:
        ``(kept, n_duplicates)``: the first occurrence of each normalized problem, in input
        order, and the number of records dropped. Records are not copied.

    Raises:
        KeyError: a record lacks the field ``key`` reads.
    """
    seen: set[str] = set()
    kept: list[dict] = []
    duplicates = 0
    for record in records:
        k = normalize(key(record))
        if k in seen:
            duplicates += 1
            continue
        seen.add(k)
        kept.append(record)
    return kept, duplicates
