"""Atomic file writes: a reader never sees a half-written output file.

Each writer puts the content into a temporary file in the destination's own directory (so the
final ``os.replace`` is a same-filesystem rename, which POSIX makes atomic) and fsyncs it
before the rename, so a crash leaves either the old file or the complete new one.
Used by every stage that writes outputs (preprocess, eval, reports).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_atomic(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Create ``path`` (and its parent directories) by calling ``write(fh)`` on a temporary file,
    then renaming it over ``path``. Returns the path.

    Raises:
        OSError: the directory cannot be created or written; the temporary file is removed and
            any previous ``path`` is left untouched. Errors raised by ``write`` propagate likewise.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the result the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": "\n"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Leave no stray temp file behind when the write or the rename fails.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; create parent directories. Returns the path."""
    return write_atomic(path, lambda fh: fh.write(text))


# One encoder for all records: json.dumps(..., ensure_ascii=False) builds a new one per call,
# a third of its cost on short records. Same output as json.dumps(obj, ensure_ascii=False).
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def write_jsonl_atomic(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> Path:
    """Write one JSON object per line (non-ASCII kept as is) to ``path`` atomically."""
    return write_atomic(path, lambda fh: fh.writelines(_ENCODE(record) + "\n" for record in records))


def write_json_array_atomic(path: str | os.PathLike, records: Iterable[Any]) -> Path:
    """Write ``records`` as a JSON array, one element per line (non-ASCII kept as is), atomically.

    Valid JSON for ``json.load``, and several times faster to write than ``indent=2``, which makes
    the json module fall back to its pure-Python encoder.
    """
    def dump(fh):
        fh.write("[\n")
        fh.writelines(("," if i else "") + _ENCODE(rec) + "\n" for i, rec in enumerate(records))
        fh.write("]\n")
    return write_atomic(path, dump)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (non-ASCII kept as is) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
