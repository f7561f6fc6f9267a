"""JSONL reading for evaluation inputs (writes go through :mod:`preprocess.atomic`)."""
from __future__ import annotations

import json
import os

from preprocess.cli import UserError, reported_as


def read_jsonl(path: str | os.PathLike, limit: int | None = None, with_lines: bool = False) -> list:
    """Read up to ``limit`` JSON objects from a JSONL file, skipping blank lines.

    With ``with_lines`` each entry is ``(line_number, object)`` (1-based) instead of the object.

    Raises:
        ValueError: a line that is not UTF-8 or not valid JSON; the message names the file and line number.
    """
    rows = []
    # Decoded line by line: a text-mode file reports a bad byte with no line number.
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if limit is not None and len(rows) >= limit:
                break
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                                 f"{exc.start + 1}); convert the file, e.g. iconv -f GB18030 -t UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            rows.append((lineno, obj) if with_lines else obj)
    return rows


def read_json(path: str | os.PathLike | None):
    """The JSON document in ``path``, or ``None`` when ``path`` is ``None`` (an optional input).

    Raises:
        OSError: unreadable file; ValueError: not JSON (file named).
    """
    if path is None:
        return None
    with open(path, encoding="utf-8") as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg})") from None


def run_with_baseline(run, args) -> tuple[dict, dict | None]:
    """CLI helper: read ``args.baseline`` (optional metrics.json) first, so that a bad path costs no
    generation run, then return ``(run(args, baseline), baseline)``.

    Raises:
        UserError: bad input (OSError, ValueError, KeyError from either step), for ``run_main``.
    """
    with reported_as(UserError, OSError, ValueError, KeyError):
        baseline = read_json(args.baseline)
        return run(args, baseline), baseline
