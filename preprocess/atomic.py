"""Atomic file writes: a reader never sees a half-written output file.

Each writer puts the content into a temporary file in the destination's own directory (so the
final ``os.replace`` is a same-filesystem rename, which POSIX makes atomic) and fsyncs it
before the rename, so a crash leaves either the old file or the complete new one.
Used by every stage that writes outputs (preprocess, eval, reports).
"""
from __future__ import annotations

import json
import os
import shutil
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


# --------------------------------------------------------------------------- sets of files


class OutputError(OSError):
    """An output set could not be written (full disk, no permission); the previous set is unchanged."""


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """Create a hidden work directory ``parent/<prefix><pid>-XXXX`` that
    :func:`remove_stale_temp_dirs` can tell apart from a live run's (it names its owner)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


def remove_stale_temp_dirs(parent: str | os.PathLike, prefix: str) -> list[Path]:
    """Delete ``parent``'s ``<prefix><pid>-*`` directories whose process no longer runs (left by a
    kill); a name without a pid counts as stale. Returns the deleted paths."""
    removed = []
    for entry in os.scandir(parent):
        if not (entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False)):
            continue
        owner = entry.name[len(prefix):].split("-", 1)[0]
        if owner.isdigit() and _alive(int(owner)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_set_atomic(directory: str | os.PathLike, writers: dict[str, Callable[[Path], Any]],
                     tag: str) -> list[Path]:
    """Write several files into ``directory`` so that they replace the previous set together.

    Each ``writers[name](path)`` writes one file into a staging directory
    ``directory/.<tag>-staging-<pid>-XXXX``. Only when all are complete is the staging directory
    renamed to ``directory/.<tag>-commit`` (the commit point: one atomic rename), then its files are
    moved over the old ones and it is removed. A kill before the commit point leaves the old set
    whole (the next call deletes the dead staging directory); a kill during the moves leaves
    ``.<tag>-commit`` behind, which marks the set as mixed and which the next call finishes first.

    Returns:
        The final paths, in the order of ``writers``.

    Raises:
        OutputError: ``directory`` or a file could not be written (e.g. ENOSPC, EACCES), naming it
            and the reason; nothing in ``directory`` has changed and the staging directory is removed.
    """
    directory = prepare_set_dir(directory, tag)
    commit = directory / f".{tag}-commit"
    try:
        staging = make_temp_dir(directory, f".{tag}-staging-")
    except OSError as exc:
        raise OutputError(exc.errno, f"cannot write into {directory}: {exc.strerror or exc}") from exc
    try:
        for name, write in writers.items():
            try:
                write(staging / name)
            except OSError as exc:
                raise OutputError(exc.errno, f"cannot write {directory / name}: {exc.strerror or exc}; "
                                  f"the previous outputs in {directory} are unchanged") from exc
        _fsync_dir(staging)
        os.rename(staging, commit)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finish_commit(directory, tag)
    return [directory / name for name in writers]


def prepare_set_dir(directory: str | os.PathLike, tag: str) -> Path:
    """Make ``directory`` ready for :func:`write_set_atomic`: create it, finish an interrupted
    commit, delete dead staging directories, and check that it is writable, so that a run can
    fail on it before its long work rather than after. Returns it as a Path.

    Raises:
        OutputError: it cannot be created or written.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        finish_commit(directory, tag)
        remove_stale_temp_dirs(directory, f".{tag}-staging-")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise OutputError(exc.errno, f"cannot write into {directory}: {exc.strerror or exc}") from exc
    return directory


def finish_commit(directory: str | os.PathLike, tag: str) -> bool:
    """Complete an output set whose commit a kill interrupted (see :func:`write_set_atomic`).
    Returns True when there was one."""
    directory = Path(directory)
    commit = directory / f".{tag}-commit"
    if not commit.is_dir():
        return False
    for entry in sorted(os.scandir(commit), key=lambda e: e.name):
        os.replace(entry.path, directory / entry.name)
    _fsync_dir(directory)
    commit.rmdir()
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
