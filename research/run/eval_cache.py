"""A cache of base-model ("before") evaluations, shared by the runs of one checkout.

The base model's eval is the same for every run with the same base checkpoint, items file, mode,
template, few-shot file, max_new_tokens and limit, so a second run copies it instead of generating
again (on this CPU machine 100 items take minutes). The key is the SHA-256 of a JSON object holding
the items file's hash, the checkpoint's path/size/mtime (:func:`research.rundir.manifest.file_stamp`; a
16 GB checkpoint is not hashed), the config's hash, the code version and the eval command's arguments
without its output directory. Entries live in ``.cache/eval/<key>/`` (the eval's output files);
``rm -rf .cache/eval`` forgets them all.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from research.rundir.layout import ROOT
from research.rundir.manifest import file_sha256, file_stamp

EVAL_CACHE = ROOT / ".cache" / "eval"


def cache_key(cmd: list[str], items: str, checkpoint: str | os.PathLike, config: str, code_version: str) -> str:
    """Hex SHA-256 naming a base eval's result.

    Args:
        cmd: the eval command line (``python -m MODULE ...``); its ``--output_dir`` value is left out.
        items: the items file (hashed). checkpoint: the base checkpoint (stamped). config: the YAML (hashed).
        code_version: ``git describe`` of the checkout, so a new version of the suite evaluates afresh.
    """
    args = list(cmd[1:])
    if "--output_dir" in args:
        i = args.index("--output_dir")
        del args[i:i + 2]
    key = {"args": args, "items": file_sha256(items), "checkpoint": file_stamp(checkpoint),
           "config": file_sha256(config), "code_version": code_version}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def reuse_or_run(key: str, out: Path, work: Callable[[], None], cache: Path = EVAL_CACHE,
                 log: Callable[[str], None] = print) -> bool:
    """Fill ``out`` from the cache entry ``key``, or run ``work`` (which writes ``out``) and store it.

    Returns:
        True when the cached result was reused, False when ``work`` ran.
    """
    entry = cache / key
    if (entry / "metrics.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(entry, out)
        log(f"  reused the base model's eval from {entry}")
        return True
    work()
    cache.mkdir(parents=True, exist_ok=True)
    # Copied to a temporary name and renamed, so a half-written entry is never taken for a result.
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{key[:12]}-"))
    shutil.copytree(out, tmp, dirs_exist_ok=True)
    try:
        tmp.rename(entry)
    except OSError:  # another run stored the same key meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return False
