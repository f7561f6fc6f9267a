"""Where a downloaded object may be written: object names that would leave the destination are refused.

Object keys are arbitrary strings (S3/OBS allow ``..`` segments, doubled slashes, backslashes and
leading slashes), so a key chosen by whoever can write to the bucket must never become a local path
as is. The rules follow what the AWS CLI and ``tarfile``'s ``data`` filter (PEP 706) refuse.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_reason(name: str) -> str | None:
    """Why the object name ``name`` (the key relative to the run, ``/``-separated) cannot be a path
    below the destination, or None when it can.

    Refused: an empty name, a leading ``/`` (absolute path, also what a doubled slash after the run
    prefix yields), an empty, ``.`` or ``..`` segment, a backslash (a separator on Windows, and
    ambiguous everywhere), a drive letter (``C:``), and NUL or other control characters.
    """
    if not name:
        return "empty name"
    if name.startswith("/"):
        return "absolute path (leading '/', e.g. a doubled slash after the run prefix)"
    if "\\" in name:
        return "backslash in the name"
    if _DRIVE.match(name):
        return "drive letter"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "control character in the name"
    segments = name.split("/")
    if "" in segments:
        return "empty path segment ('//')"
    if ".." in segments:
        return "'..' segment (would leave the destination)"
    if "." in segments:
        return "'.' segment"
    return None


def target_inside(dest: str | os.PathLike, name: str) -> Path:
    """``dest/name`` after checking that it stays inside ``dest``, also through symbolic links that
    already exist below ``dest``.

    Raises:
        ValueError: ``name`` is unsafe (see ``unsafe_reason``) or resolves outside ``dest``; the
            message names it and says why.
    """
    reason = unsafe_reason(name)
    if reason:
        raise ValueError(f"object name {name!r}: {reason}")
    root = os.path.realpath(dest)
    target = os.path.realpath(os.path.join(root, *name.split("/")))
    if os.path.commonpath([root, target]) != root:
        raise ValueError(f"object name {name!r}: resolves to {target}, outside {root} (a symbolic link below it?)")
    return Path(dest, *name.split("/"))
