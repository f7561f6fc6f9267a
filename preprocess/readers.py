"""Read and validate training files of five formats, keeping every bad line's position and reason.

Formats (field names from the sources in ``/work/shared/data/README.md``):
    contest   ``{"problem", "solution"}``               2024 Ascend contest train.json / test set
    tianchi   ``{"id", "problem", "questions": [{"question", "options": [...], "answer"?}]}``
              Tianchi logical-reasoning rounds; one record per sub-question, ``answer``
              optional (test files have none)
    gsm8k     ``{"question", "answer"}``                openai/grade-school-math
    alpaca    ``{"instruction", "input"?, "output"}``    Stanford alpaca
    fastchat  ``{"conversations": [{"from": "human"|"gpt", "value"}, ...]}``   FastChat/vicuna;
              a ``system`` turn (LLaMA-Factory sharegpt) is allowed and not part of the pair

A file is JSONL (one object per line) or, when its first non-blank character is ``[``, one
JSON array of objects (alpaca and fastchat files are usually published that way), possibly
followed by JSONL lines; array elements are reported by the line they start on and their
0-based ``element`` index (a minified array has them all on line 1). The format is detected per
record from its keys (the first format whose required keys are all present, else the one with
most of them, so the error names the field that is actually missing) unless ``fmt`` forces one.

Each line (array element) is decoded on its own, so one bad line costs that line only: invalid
UTF-8, JSON nested deeper than Python's decoder allows, an integer over Python's 4,300-digit
limit and a lone UTF-16 surrogate (``"\\ud800"``, which no file can be written with) are
rejections with a reason, never an exception. A UTF-8 byte-order mark at the start of a file
and LF, CRLF or CR-only line ends are accepted. Lines holding only whitespace are skipped
without being counted as read or rejected.
"""
from __future__ import annotations

import json
import os
import re
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
        (+ ``"element"`` for a JSON array element)
        (line 1-based; ``solution`` is "" for a Tianchi question without an answer) plus, for
        Tianchi records, ``"logic": {"problem_id", "question_index", "context", "question",
        "options"}``. ``rejected``: ``{"file", "line", "reason"}`` (+ ``"element"``). ``file`` is
        the path as given.

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


def read_units(paths: Iterable[str | os.PathLike]) -> list[tuple[str, int, object, str, int | None]]:
    """Split files into units ``(file, line, payload, reason, element)`` for :func:`parse_unit`.

    A JSONL line's payload is its raw bytes (decoded later, so the work can be spread over
    processes); a JSON array element's payload is the decoded object and ``element`` its 0-based
    index in the array (None for JSONL lines); a unit that already failed has payload None and a
    reason. Lines after an array's closing ``]`` are read as JSONL. CR, LF and CRLF line ends all
    count as line ends. An object pretty-printed over several lines of a JSONL file is one unit at
    its first line, unless one of those lines is a complete record on its own (then each line is
    its own unit, so a broken object never swallows a good line).

    Raises:
        FileNotFoundError / OSError: a file cannot be opened.
    """
    units = []
    for path in paths:
        name = str(path)
        data = Path(path).read_bytes()
        if data.startswith(_BOM):
            data = data[len(_BOM):]
        # Raw CR cannot occur inside a JSON string, so normalizing line ends changes no value.
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        first_line = 1
        if data.lstrip()[:1] == b"[":
            tail = _append_units(units, name, _iter_array(data))
            if tail is None:
                continue
            first_line, data = tail
        units.extend((name, line, raw, "", None) for line, raw in _jsonl_lines(data, first_line))
    return units


def _append_units(units: list, name: str, gen) -> tuple[int, bytes] | None:
    """Append ``gen``'s ``(line, obj, reason, element)`` as units of ``name``; return its return value."""
    while True:
        try:
            line, obj, reason, element = next(gen)
        except StopIteration as stop:
            return stop.value
        units.append((name, line, obj, reason, element))


# A pretty-printed object is joined over at most this many lines / bytes: enough for any record,
# and bounded so that a file of unterminated lines stays linear.
_SPAN_LINES = 400
_SPAN_BYTES = 1 << 20


def _jsonl_lines(data: bytes, first_line: int) -> Iterable[tuple[int, bytes]]:
    """``(line, raw bytes)`` per non-blank JSONL record, joining pretty-printed objects."""
    lines = data.split(b"\n")
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped:
            i += 1
            continue
        n = _object_span(lines, i) if stripped[:1] == b"{" and stripped[-1:] != b"}" else 1
        yield first_line + i, b"\n".join(lines[i:i + n])
        i += n


def _object_span(lines: list[bytes], i: int) -> int:
    """Number of lines (from ``i``) one JSON object spans, or 1 when they do not form one."""
    window, size = [], 0
    for raw in lines[i:i + _SPAN_LINES]:
        window.append(raw)
        size += len(raw) + 1
        if size > _SPAN_BYTES:
            break
    try:
        text = b"\n".join(window).decode("utf-8")
        _, end = json.JSONDecoder().raw_decode(text, len(text) - len(text.lstrip()))
    except (ValueError, RecursionError):
        return 1
    n = text.count("\n", 0, end) + 1
    if text[end:].split("\n", 1)[0].strip():
        return 1
    for raw in lines[i + 1:i + n]:
        obj, reason = decode_line(raw)
        if not reason and _is_record(obj):
            return 1
    return n


def parse_unit(unit: tuple, fmt: str = "auto") -> tuple[list[dict], dict | None]:
    """Turn one unit of :func:`read_units` into ``(good records, rejection or None)``.

    Good records are ``{"file", "line", **parse_object(...)}``; a rejection is
    ``{"file", "line", "reason"}``. Both carry ``"element"`` (0-based array index) for a unit
    from a JSON array.
    """
    name, lineno, payload, reason, element = unit
    where = {"file": name, "line": lineno} if element is None else {"file": name, "line": lineno, "element": element}
    if isinstance(payload, bytes):
        # Valid UTF-8 holds no surrogate; only a \uD800-\uDFFF escape can make one (checked only then: it is costly).
        may_hold_surrogate = _SURROGATE_ESCAPE.search(payload) is not None
        payload, reason = decode_line(payload)
        if not reason and may_hold_surrogate:
            reason = lone_surrogate(payload)
    if not reason:
        try:
            return [{**where, **r} for r in parse_object(payload, fmt)], None
        except BadRecord as exc:
            reason = str(exc)
    return [], {**where, "reason": reason}


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
    except (ValueError, RecursionError) as exc:
        return None, undecodable(exc)


def undecodable(exc: Exception) -> str:
    """Reason for a JSON text the json module refuses beyond syntax (depth, integer size)."""
    if isinstance(exc, RecursionError):
        return "not JSON: nested too deeply to decode"
    # "Exceeds the limit (4300 digits) for integer string conversion: ...; use sys.set_int_max_str_digits()"
    return f"not JSON: {str(exc).split(';')[0]}"


def lone_surrogate(obj: object, path: str = "") -> str:
    """Reason naming a string (key or value) of ``obj`` holding a lone UTF-16 surrogate, else "".

    ``path`` prefixes the JSON path in the reason (``conversations[1].value``). JSON may spell a
    lone surrogate (``"\\ud800"``) but it is not a character: it cannot be written as UTF-8 nor
    tokenized. Iterative, as a decoded value can be nested almost as deep as the recursion limit.
    """
    stack = [(obj, path)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            m = _SURROGATE.search(value)
            if m:
                return (f"lone surrogate U+{ord(m.group()):04X} in {path.lstrip('.') or 'the record'} "
                        "(invalid UTF-8 or an unpaired \\u escape)")
        elif isinstance(value, dict):
            for key, item in value.items():
                if _SURROGATE.search(key):
                    return (f"lone surrogate in a key of {path.lstrip('.') or 'the record'} "
                            "(invalid UTF-8 or an unpaired \\u escape)")
                stack.append((item, f"{path}.{key}"))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
    return ""


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _iter_array(data: bytes):
    """Yield ``(line, object, "", element)`` per element of a JSON array file, or ``(line, None, reason,
    element)``; return ``(line, bytes)`` of what follows the closing ``]`` (None when nothing does).

    After a broken element, reading resumes at the next intact element (:func:`_resync`), so one
    damaged element costs that element only. Invalid UTF-8 is kept as
    lone surrogates (``surrogateescape``), which reject the element that holds them.
    """
    text = data.decode("utf-8", "surrogateescape")
    may_hold_surrogate = _SURROGATE_ESCAPE.search(data) is not None or _SURROGATE.search(text) is not None
    decoder = json.JSONDecoder()
    n = len(text)

    def skip(p: int) -> int:
        while p < n and text[p] in " \t\n":
            p += 1
        return p

    pos = skip(text.index("[") + 1)
    element = 0
    # Line numbers are counted incrementally: counting from the file start for every element is
    # quadratic in the file size.
    line, counted = 1, 0

    def line_at(p: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, p)
        counted = p
        return line

    while pos < n and text[pos] != "]":
        begin, start = pos, line_at(pos)
        try:
            obj, pos = decoder.raw_decode(text, pos)
            reason = ""
        except json.JSONDecodeError as exc:
            obj, reason = None, f"not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        except (ValueError, RecursionError) as exc:
            obj, reason = None, undecodable(exc)
        if not reason:
            pos = skip(pos)
            if pos < n and text[pos] not in ",]":
                reason = "not JSON: expected ',' or ']' after the element"
        if reason:
            yield start, None, reason, element
            pos = _resync(text, decoder, begin)
        else:
            bad_text = lone_surrogate(obj) if may_hold_surrogate else ""
            yield start, None if bad_text else obj, bad_text, element
            if pos >= n:
                yield line_at(pos), None, "not JSON: the array has no closing ']'", element + 1
            elif text[pos] == ",":
                pos = skip(pos + 1)
        element += 1
    if pos >= n:
        return None
    rest = text[pos + 1:]
    if not rest.strip():
        return None
    return line_at(pos), rest.encode("utf-8", "surrogateescape")


def _resync(text: str, decoder: json.JSONDecoder, begin: int) -> int:
    """Where reading goes on after the broken element that starts at ``begin``: the start of the
    next element that decodes, or the array's closing ``]``, else the end of the text.

    The element's own nested objects must not pass for the next element. In a pretty-printed
    array the next element (or the closing ``]``) starts a line no further right than the broken
    one; in a minified one it follows a ``,`` and is a whole record (a broken string can
    swallow the next elements of a line).
    """
    line_start = text.rfind("\n", 0, begin) + 1
    column = begin - line_start
    pretty = not text[line_start:begin].strip(" \t[,")
    pattern = re.compile(r"^([ \t]*,?[ \t]*)(\{|\][ \t]*$)" if pretty else r",[ \t]*(\{)", re.M)
    for m in pattern.finditer(text, begin + 1):
        at = m.start(m.lastindex)
        if pretty and len(m.group(1).replace(",", "")) > column:
            continue
        if text[at] == "]":
            return at
        try:
            obj, end = decoder.raw_decode(text, at)
        except (ValueError, RecursionError):
            continue
        if text[end:].lstrip(" \t\n")[:1] in (",", "]") and (pretty or _is_record(obj)):
            return at
    return len(text)


def _is_record(obj: object) -> bool:
    """Whether ``obj`` has all required keys of some format."""
    return isinstance(obj, dict) and any(all(k in obj for k in keys) for keys in FORMATS.values())


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


# A system turn (LLaMA-Factory sharegpt, FastChat) sets the scene; the pair is the user/assistant turns after it.
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


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
