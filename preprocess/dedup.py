"""Exact deduplication on a normalized problem text, and MinHash/LSH near-duplicates.

The contest's train.json shrinks from 809,993 to 548,942 items under exact dedup
(``/work/shared/data/README.md``). Normalization additionally folds the differences that do
not change a problem's meaning: Unicode compatibility forms (full-width ``１２３``/``？``
vs ASCII, NFKC), runs of whitespace, and trailing zeros of decimal numbers (``1366.00``,
``1366.0`` and ``1366`` are one number, and the contest's answers compare numerically).

Near-duplicates (:func:`near_dedup`) are for free-text word problems only: two contest
computational items that differ in one number are different problems, while two word problems
that differ in a name or a comma are not. Two texts are near-duplicates when the estimated
Jaccard similarity of their word 3-shingles (normalized text, ``datasketch``'s MinHash and
MinHashLSH) reaches the threshold *and* they contain the same numbers and operator symbols in
the same order, since changing a number or a sign changes the answer.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Callable, Iterable

import numpy as np

_WHITESPACE = re.compile(r"\s+")
# A decimal whose fraction ends in zeros, not glued to a longer dotted token such as a
# version string (1.2.3) or an identifier. Matching only these (not every decimal) keeps the
# replacement callback off the common case.
_DECIMAL = re.compile(r"(?<![\w.])(\d+)\.(\d*?)0+(?!\w|\.\d)")


def _strip_fraction(m: re.Match[str]) -> str:
    frac = m.group(2)
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
    # The quick check is C code and far cheaper than normalizing already-normal text.
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = _WHITESPACE.sub(" ", text).strip()
    return _DECIMAL.sub(_strip_fraction, text)


def first_occurrences(keys: Iterable[str]) -> list[int | None]:
    """For each key in order: ``None`` at its first occurrence, else the index of that first
    occurrence (the same shape as :func:`near_dedup`'s result)."""
    first: dict[str, int] = {}
    out: list[int | None] = []
    for i, k in enumerate(keys):
        j = first.setdefault(k, i)
        out.append(None if j == i else j)
    return out


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
    records = list(records)
    marks = first_occurrences(normalize(key(r)) for r in records)
    kept = [r for r, m in zip(records, marks) if m is None]
    return kept, len(records) - len(kept)


_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, k: int = 3) -> set[bytes]:
    """Return the word ``k``-shingles of ``normalize(text)``, lower-cased, UTF-8 encoded.

    A text shorter than ``k`` words gives one shingle of all its words.
    """
    words = _WORD.findall(normalize(text).lower())
    if len(words) <= k:
        return {" ".join(words).encode("utf-8")}
    return {" ".join(words[i : i + k]).encode("utf-8") for i in range(len(words) - k + 1)}


_MATH_TOKEN = re.compile(r"\d+(?:\.\d+)?|[-+*/^=<>×÷]")


def numbers(text: str) -> list[str]:
    """Return the numbers and operator symbols of ``normalize(text)`` in order
    (``"f(-2.50) = 3"`` -> ``["-", "2.5", "=", "3"]``)."""
    return _MATH_TOKEN.findall(normalize(text))


@lru_cache(maxsize=4)
def _permutations(num_perm: int, seed: int):
    from datasketch import MinHash  # imported here: only free-text corpora need it (scipy, ~1 s)

    # Drawing the permutations costs milliseconds; share one draw across all texts.
    return MinHash(num_perm=num_perm, seed=seed).permutations


def signature(text: str, num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """Return the MinHash signature of ``text``'s :func:`shingles`: ``num_perm`` uint64 values."""
    from datasketch import MinHash

    mh = MinHash(num_perm=num_perm, seed=seed, permutations=_permutations(num_perm, seed))
    mh.update_batch(list(shingles(text)))
    return mh.hashvalues


def near_dedup(
    texts: list[str],
    threshold: float = 0.85,
    num_perm: int = 128,
    seed: int = 1,
    signatures: list[np.ndarray] | None = None,
) -> list[int | None]:
    """Find near-duplicates among ``texts`` in order; the first of a group is kept.

    Args:
        texts: problem texts, in input order.
        threshold: Jaccard similarity (0 < t < 1) above which two texts are near-duplicates,
            as estimated by MinHash LSH; candidates are confirmed with the MinHash estimate.
        num_perm: MinHash permutations (accuracy vs. speed).
        seed: MinHash seed; fixed so the result is deterministic.
        signatures: ``[signature(t, num_perm, seed) for t in texts]`` when already computed
            (the pipeline computes them in parallel).

    Returns:
        For each text, None if it is kept, else the index of the earlier kept text it
        duplicates (the earliest when several match; same numbers and signs required, see module doc).

    Raises:
        ValueError: ``threshold`` is outside (0, 1) (LSH needs at least two bands), or ``signatures`` has another length.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if signatures is None:
        signatures = [signature(t, num_perm, seed) for t in texts]
    if len(signatures) != len(texts):
        raise ValueError(f"{len(signatures)} signatures for {len(texts)} texts")
    if not texts:
        return []
    from datasketch import LeanMinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    kept: dict[int, tuple[LeanMinHash, list[str]]] = {}  # index -> (MinHash, numbers of its text)
    out: list[int | None] = []
    for i, values in enumerate(signatures):
        mh = LeanMinHash(seed=seed, hashvalues=values)
        own = numbers(texts[i])
        hits = [j for j in lsh.query(mh) if kept[j][0].jaccard(mh) >= threshold and kept[j][1] == own]
        if hits:
            out.append(min(hits))
            continue
        lsh.insert(i, mh)
        kept[i] = (mh, own)
        out.append(None)
    return out
