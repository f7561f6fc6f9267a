"""Read and validate training files of five formats, keeping every bad line's position and reason.

Formats (field names from the sources in ``/work/shared/data/README.md``):
    contest   ``{"problem", "solution"}``               2024 Ascend contest train.json / test set
    tianchi   ``{"id", "problem", "questions": [{"question", "options": [...], "answer"?}]}``
              Tianchi logical-reasoning rounds; one record per sub-question, ``answer``
              optional (test files have none)
    gsm8k     ``{"question", "answer"}``                openai/grade-school-math
    alpaca    ``{"instruction", "input"?, "output"}``    Stanford alpaca
    fastchat  ``{"conversations": [{"from": "human"|"gpt", "value"}, ...]}``   FastChat/vicuna

A file is JSONL (one object per line) or, when its first non-blank character is ``[``, one
JSON array of objects (alpaca and fastchat files are usually published that way); array
elements are reported by the line they start on. The format is detected per record from its
keys (the first format whose required keys are all present, else the one with most of them,
so the error names the field that is actually missing) unless ``fmt`` forces one.

Each line is decoded on its own, so one line of invalid UTF-8 costs that line only.
A UTF-8 byte-order mark at the start of a file and CRLF line ends are accepted.
Lines holding only whitespace are skipped without being counted as read or rejected.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from .logic import tianchi_records

_BOM = b"\xef\xbb\xbf"

# Required keys per format, in detection order: the contest's own first.
FORMATS: dict[str, tuple[str, ...]] = {
    "contest": ("problem", "solution"),
    "tianchi": ("problem", "questions"),
    "gsm8k": ("question", "answer"),
    "alpaca": ("instruction", "output"),
    "fastchat": ("conversations",),
}


class BadRecord(ValueError):
    """A record that cannot be used; the message is the reason written to rejected.jsonl."""


def read_records(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    fmt: str = "auto",
) -> tuple[list[dict], list[dict]]:
    """Read files of any supported format and split them into good records and rejected lines.

    Args:
        paths: one path or an iterable of paths, read in the order given.
        fmt: "auto" (detect per record) or one of ``FORMATS``.

    Returns:
        ``(good, rejected)``. ``good``: ``{"file", "line", "format", "problem", "solution"}``
        (line 1-based; ``solution`` is "" for a Tianchi question without an answer) plus, for
        Tianchi records, ``"logic": {"problem_id", "question_index", "context", "question",
        "options"}``. ``rejected``: ``{"file", "line", "reason"}``. ``file`` is the path as given.

    Raises:
        FileNotFoundError / OSError: a file cannot be opened (a usage error, not a bad line).
        ValueError: unknown ``fmt``.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected 'auto' or one of {sorted(FORMATS)}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    good: list[dict] = []
    rejected: list[dict] = []
    for unit in read_units(paths):
        records, bad = parse_unit(unit, fmt)
        good.extend(records)
        if bad:
            rejected.append(bad)
    return good, rejected


def read_units(paths: Iterable[str | os.PathLike]) -> list[tuple[str, int, object, str]]:
    """Split files into units ``(file, line, payload, reason)`` for :func:`parse_unit`.

    A JSONL line's payload is its raw bytes (decoded later, so the work can be spread over
    processes); a JSON array element's payload is the decoded object; a unit that already
    failed has payload None and a reason.

    Raises:
        FileNotFoundError / OSError: a file cannot be opened.
    """
    units = []
    for path in paths:
        name = str(path)
        data = Path(path).read_bytes()
        if data.startswith(_BOM):
            data = data[len(_BOM):]
        if data.lstrip()[:1] == b"[":
            units.extend((name, line, obj, reason) for line, obj, reason in _iter_array(data))
            continue
        for lineno, raw in enumerate(data.split(b"\n"), start=1):
            raw = raw.rstrip(b"\r")
            if raw.strip():
                units.append((name, lineno, raw, ""))
    return units


def parse_unit(unit: tuple[str, int, object, str], fmt: str = "auto") -> tuple[list[dict], dict | None]:
    """Turn one unit of :func:`read_units` into ``(good records, rejection or None)``.

    Good records are ``{"file", "line", **parse_object(...)}``; a rejection is
    ``{"file", "line", "reason"}``.
    """
    name, lineno, payload, reason = unit
    if isinstance(payload, bytes):
        payload, reason = decode_line(payload)
    if not reason:
        try:
            return [{"file": name, "line": lineno, **r} for r in parse_object(payload, fmt)], None
        except BadRecord as exc:
            reason = str(exc)
    return [], {"file": name, "line": lineno, "reason": reason}


def decode_line(raw: bytes) -> tuple[object, str]:
    """Decode one JSONL line: ``(object, "")`` or ``(None, reason)``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start}"
    try:
        return json.loads(text), ""
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at column {exc.colno}"


def _iter_array(data: bytes) -> Iterable[tuple[int, object, str]]:
    """Yield ``(line, object, "")`` per element of a JSON array file, or ``(line, None, reason)``.

    A JSON array that breaks off yields one rejection at the line of the error; elements
    before it are still yielded.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A JSON array is one value: a bad byte leaves nothing trustworthy after it.
        yield data.count(b"\n", 0, exc.start) + 1, None, f"invalid UTF-8 at byte {exc.start} of the file"
        return
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    n = len(text)

    def skip(p: int) -> int:
        while p < n and text[p] in " \t\r\n":
            p += 1
        return p

    pos = skip(pos)
    if pos < n and text[pos] == "]":
        return
    # Line numbers are counted incrementally: counting from the file start for every element is
    # quadratic in the file size.
    line, counted = 1, 0
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield exc.lineno, None, f"not JSON: {exc.msg} at column {exc.colno}"
            return
        yield line, obj, ""
        pos = skip(pos)
        if pos < n and text[pos] == ",":
            pos = skip(pos + 1)
            continue
        if pos < n and text[pos] == "]":
            return
        yield line + text.count("\n", counted, pos), None, "not JSON: expected ',' or ']' in the array"
        return


def detect_format(obj: dict) -> str:
    """Return the format whose required keys ``obj`` has (the one with most of them when none fits)."""
    best, best_hits = "contest", -1
    for name, keys in FORMATS.items():
        hits = sum(k in obj for k in keys)
        if hits == len(keys):
            return name
        if hits > best_hits:
            best, best_hits = name, hits
    return best


def _text(obj: dict, key: str, *, required: bool = True) -> str:
    if key not in obj:
        if required:
            raise BadRecord(f"missing field {key!r}")
        return ""
    value = obj[key]
    if not isinstance(value, str):
        raise BadRecord(f"field {key!r} is not a string (got {type(value).__name__})")
    if required and not value.strip():
        raise BadRecord(f"field {key!r} is empty")
    return value


def parse_object(obj: object, fmt: str = "auto") -> list[dict]:
    """Turn one decoded JSON value into records ``{"format", "problem", "solution", ...}``.

    Raises:
        BadRecord: wrong type, missing or empty field; the message names the field.
    """
    if not isinstance(obj, dict):
        raise BadRecord(f"not a JSON object (got {type(obj).__name__})")
    name = detect_format(obj) if fmt == "auto" else fmt
    if name == "contest":
        pairs = [(_text(obj, "problem"), _text(obj, "solution"))]
    elif name == "gsm8k":
        pairs = [(_text(obj, "question"), _text(obj, "answer"))]
    elif name == "alpaca":
        instruction, extra = _text(obj, "instruction"), _text(obj, "input", required=False)
        problem = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        pairs = [(problem, _text(obj, "output"))]
    elif name == "fastchat":
        pairs = [_fastchat_pair(obj)]
    else:
        try:
            return [{"format": "tianchi", **r} for r in tianchi_records(obj)]
        except ValueError as exc:
            raise BadRecord(str(exc)) from None
    return [{"format": name, "problem": p, "solution": s} for p, s in pairs]


_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


def _fastchat_pair(obj: dict) -> tuple[str, str]:
    """The first user turn and the assistant turn right after it."""
    turns = obj.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise BadRecord("field 'conversations' is not a non-empty list")
    roles = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise BadRecord(f"conversations[{i}] is not an object")
        role = _ROLES.get(turn.get("from", turn.get("role")))
        value = turn.get("value", turn.get("content"))
        if role is None or not isinstance(value, str):
            raise BadRecord(f"conversations[{i}] needs 'from' human/gpt and a string 'value'")
        roles.append((role, value))
    for (r1, v1), (r2, v2) in zip(roles, roles[1:]):
        if r1 == "user" and r2 == "assistant":
            if not v1.strip():
                raise BadRecord("field 'conversations' has an empty user turn")
            if not v2.strip():
                raise BadRecord("field 'conversations' has an empty assistant turn")
            return v1, v2
    raise BadRecord("field 'conversations' has no user turn followed by an assistant turn")
