"""Read and validate contest JSONL files, keeping every bad line's position and reason.

Input format (contest train.json / test set, ``/work/shared/data/README.md``): one JSON object
per line with non-empty string fields ``problem`` and ``solution``. GSM8K files
(``{"question", "answer"}``, openai/grade-school-math) are accepted too, mapped to
problem/solution, so word problems can be fed in unchanged; a line that has neither pair
is rejected.

Each line is decoded on its own, so one line of invalid UTF-8 costs that line only.
A UTF-8 byte-order mark at the start of a file and CRLF line ends are accepted.
Lines holding only whitespace are skipped without being counted as read or rejected.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

_BOM = b"\xef\xbb\xbf"
# Accepted field pairs, in order of preference: the contest's own, then GSM8K's.
_SCHEMAS = (("problem", "solution"), ("question", "answer"))


def read_contest_jsonl(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
) -> tuple[list[dict], list[dict]]:
    """Read JSONL files and split their lines into good and rejected records.

    Args:
        paths: one path or an iterable of paths, read in the order given.

    Returns:
        ``(good, rejected)``. ``good``: ``{"file", "line", "problem", "solution"}`` (strings
        exactly as in the file, line 1-based). ``rejected``: ``{"file", "line", "reason"}``,
        reason one of "invalid UTF-8 ...", "not JSON ...", "not a JSON object ...",
        "missing field ...", "field ... is not a string ...", "field ... is empty".
        ``file`` is the path as given, converted to ``str``.

    Raises:
        FileNotFoundError / OSError: a file cannot be opened (a missing input is a usage
            error, not a bad line).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    good: list[dict] = []
    rejected: list[dict] = []
    for path in paths:
        name = str(path)
        data = Path(path).read_bytes()
        if data.startswith(_BOM):
            data = data[len(_BOM):]
        for lineno, raw in enumerate(data.split(b"\n"), start=1):
            raw = raw.rstrip(b"\r")
            if not raw.strip():
                continue
            record, reason = _parse_line(raw)
            if reason:
                rejected.append({"file": name, "line": lineno, "reason": reason})
            else:
                good.append({"file": name, "line": lineno, **record})
    return good, rejected


def _parse_line(raw: bytes) -> tuple[dict | None, str]:
    """Return ``({"problem", "solution"}, "")`` or ``(None, reason)`` for one line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(obj, dict):
        return None, f"not a JSON object (got {type(obj).__name__})"
    # Use the GSM8K pair only when the contest's fields are both absent, so a contest line
    # missing "solution" is reported as exactly that.
    q_key, a_key = _SCHEMAS[0]
    if q_key not in obj and a_key not in obj and all(k in obj for k in _SCHEMAS[1]):
        q_key, a_key = _SCHEMAS[1]
    out = {}
    for key, target in ((q_key, "problem"), (a_key, "solution")):
        if key not in obj:
            return None, f"missing field {key!r}"
        value = obj[key]
        if not isinstance(value, str):
            return None, f"field {key!r} is not a string (got {type(value).__name__})"
        if not value.strip():
            return None, f"field {key!r} is empty"
        out[target] = value
    return out, ""
