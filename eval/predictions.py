"""Read a predictions file (JSONL of ``{"id", "generation"}``) line by line, keeping bad lines aside.

A line is rejected, with its file, line number and reason, when it is not valid UTF-8 or JSON, not a
JSON object, lacks ``id`` or ``generation``, has an ``id`` that is not a string or integer, a
``generation`` that is not a string (a number, list or null: a generation is model text), or repeats
an id already seen (the first one is graded). Every other line is kept.

``load_predictions`` adds the checks of a grading CLI (``eval.math``, ``eval.base``): an empty file,
no usable line or no id matching an item is an error; a partial match is a warning with counts.
"""
from __future__ import annotations

import dataclasses
import os
import sys

from preprocess.readers import decode_line, lone_surrogate


@dataclasses.dataclass
class Predictions:
    """``rows``: good ``{"id", "generation", ...}`` dicts in file order; ``rejected``: one
    ``{"file", "line", "reason"}`` per bad line (line 1-based); ``lines``: non-blank lines read."""

    rows: list[dict]
    rejected: list[dict]
    lines: int


def _json_type(value) -> str:
    """The JSON name of a decoded value's type (``null``, ``number``, ``array``...)."""
    names = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string", list: "array",
             dict: "object"}
    return names.get(type(value), type(value).__name__)


def _problem(line: bytes, seen: dict, lineno: int) -> tuple[dict | None, str | None]:
    """``(row, None)`` for a good line, ``(None, reason)`` for a bad one."""
    obj, reason = decode_line(line)
    if reason:
        return None, reason
    if not isinstance(obj, dict):
        return None, f"not a JSON object (a JSON {_json_type(obj)})"
    for field in ("id", "generation"):
        if field not in obj:
            return None, f"field {field!r} missing (keys: {sorted(obj)[:10]})"
    key = obj["id"]
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        return None, f"field 'id' must be a string or integer, got {_json_type(key)}"
    if not isinstance(obj["generation"], str):
        return None, f"field 'generation' must be a string, got {_json_type(obj['generation'])}"
    reason = lone_surrogate(obj["generation"], "generation")
    if reason:
        return None, reason
    first = seen.setdefault(str(key), lineno)
    if first != lineno:
        return None, f"duplicate id {str(key)!r} (first on line {first}, which is graded)"
    return obj, None


def read_predictions(path: str | os.PathLike) -> Predictions:
    """Read every line of ``path``; bad lines go to ``rejected`` instead of raising.

    Raises:
        OSError: the file cannot be read.
    """
    rows, rejected, seen, lines = [], [], {}, 0
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            lines += 1
            row, reason = _problem(line, seen, lineno)
            if row is None:
                rejected.append({"file": str(path), "line": lineno, "reason": reason})
            else:
                rows.append(row)
    return Predictions(rows, rejected, lines)


def load_predictions(path: str | os.PathLike, item_ids: list, items_file: str | os.PathLike
                     ) -> tuple[list[dict], list[dict], dict]:
    """Good predictions, rejected lines (``{"file", "line", "reason"}``) and their counts, for grading
    against the items ``item_ids`` (matched as strings) read from ``items_file``.

    Counts: ``{"prediction_lines", "rejected_lines", "matched", "unmatched_predictions"}``.

    Each rejected line and a partial match (items without a prediction, predictions matching no
    item) are reported as ``warning:`` lines on stderr.

    Raises:
        ValueError: the file has no lines, no usable line, or no prediction whose id matches an
            item; the message names the file and, for ids, examples of both sides.
    """
    read = read_predictions(path)
    for r in read.rejected:
        print(f"warning: {r['file']}:{r['line']}: {r['reason']}; line rejected", file=sys.stderr)
    if not read.lines:
        raise ValueError(f"{path}: no predictions (the file is empty)")
    if not read.rows:
        raise ValueError(f"{path}: none of its {read.lines} lines is a usable prediction (all rejected, see above)")
    item_ids = [str(key) for key in item_ids]
    pred_ids = {str(row["id"]) for row in read.rows}
    matched = len(pred_ids.intersection(item_ids))
    if not matched:
        raise ValueError(f"{path}: none of its {len(pred_ids)} prediction ids matches one of the {len(item_ids)} "
                         f"items of {items_file} (prediction ids {sorted(pred_ids)[:3]}..., item ids "
                         f"{item_ids[:3]}...)")
    unmatched = len(pred_ids) - matched
    if matched < len(item_ids) or unmatched or read.rejected:
        print(f"warning: {path}: {matched} of {len(item_ids)} items have a prediction ({len(item_ids) - matched} "
              f"count as missing); {unmatched} predictions match no item; {len(read.rejected)} lines rejected",
              file=sys.stderr)
    counts = {"prediction_lines": read.lines, "rejected_lines": len(read.rejected), "matched": matched,
              "unmatched_predictions": unmatched}
    return read.rows, read.rejected, counts
