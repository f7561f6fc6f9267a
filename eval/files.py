"""JSONL reading for evaluation inputs (writes go through :mod:`preprocess.atomic`)."""
from __future__ import annotations

import json
import os


def read_jsonl(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """Read up to ``limit`` JSON objects from a JSONL file, skipping blank lines.

    Raises:
        ValueError: a line that is not valid JSON; the message names the file and line number.
    """
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if limit is not None and len(rows) >= limit:
                break
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return rows
