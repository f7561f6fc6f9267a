"""Local digests used to verify what the server stored: whole-file MD5 and the multipart ETag."""
from __future__ import annotations

import hashlib
import os

_CHUNK = 4 * 1024 * 1024


def file_digests(path: str | os.PathLike, part_size: int) -> tuple[int, str, str]:
    """One pass over a file: ``(size in bytes, MD5 hex, multipart ETag)``.

    The multipart ETag is the S3 convention that OBS follows for objects assembled by
    CompleteMultipartUpload: ``md5(md5(part_1) || ... || md5(part_n)).hex + "-n"``, parts of
    ``part_size`` bytes (the last one shorter). An empty file counts as one empty part, as the OBS
    SDK's ``uploadFile`` sends it.

    Raises:
        OSError: the file cannot be read.
        ValueError: ``part_size`` < 1.
    """
    if part_size < 1:
        raise ValueError(f"part_size must be >= 1 byte, got {part_size}")
    whole = hashlib.md5()
    part_md5s = []
    size = 0
    with open(path, "rb") as f:
        while True:
            part = hashlib.md5()
            remaining = part_size
            while remaining:
                chunk = f.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                whole.update(chunk)
                part.update(chunk)
                remaining -= len(chunk)
            read = part_size - remaining
            size += read
            if read or not part_md5s:
                part_md5s.append(part.digest())
            if remaining:
                break
    etag = f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"
    return size, whole.hexdigest(), etag


def effective_part_size(size: int, part_size: int, max_parts: int = 10000) -> int:
    """The part size the OBS SDK's ``uploadFile`` really uses for a ``size``-byte file.

    Mirrors ``obs.transfer.uploadOperation.reset_partSize`` (esdk-obs-python 3.26.6): clamp to
    [100 KiB, 5 GiB], then grow so that there are fewer than ``max_parts`` parts.
    """
    part_size = min(max(int(part_size), 100 * 1024), 5 * 1024 ** 3)
    if size // part_size >= max_parts:
        part_size = -(-size // max_parts)
    return part_size
