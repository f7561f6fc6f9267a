"""``run.json``: what a run was made from and what each stage left behind.

Written atomically after every stage change, so a killed run still says which stages finished.
Shape::

    {"run_id": str, "code_version": str (git describe), "created": ISO time,
     "settings": {config, load_checkpoint, base_source, vocab_file, template, seq_length, seed, ...},
     "data": [{"path", "sha256", "bytes"}],
     "stages": {name: {"status": "running"|"done"|"failed", "inputs": {...}, "key": sha256 of inputs,
                       "outputs": [paths relative to the run directory], "started", "finished",
                       "seconds", "error"?}}}

A stage is complete when its status is ``done``, its outputs exist and its inputs (settings, input
file hashes, the keys of the stages it reads from) are unchanged; :func:`run_stage` skips it then.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

from preprocess.atomic import write_json_atomic
from research.rundir.layout import ROOT, RunLayout

STATUSES = ("running", "done", "failed")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_stamp(path: str | os.PathLike) -> dict:
    """Path, size and modification time of a large file (a 16 GB base checkpoint is not hashed)."""
    st = os.stat(path)
    return {"path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def data_entry(path: str | os.PathLike) -> dict:
    """``{"path", "sha256", "bytes"}`` of an input data file."""
    return {"path": str(path), "sha256": file_sha256(path), "bytes": os.path.getsize(path)}


def code_version(root: Path = ROOT) -> str:
    """``git describe --always --dirty`` of the suite's checkout, or ``unknown`` outside git."""
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def inputs_key(inputs: dict) -> str:
    """SHA-256 of a stage's inputs (canonical JSON), the value later stages depend on."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


class Manifest:
    """The ``run.json`` of one run directory, saved after every change.

    Raises (on load):
        ValueError: ``run.json`` is not valid JSON or lacks ``settings``/``stages`` (names the file).
    """

    def __init__(self, layout: RunLayout, data: dict):
        self.layout = layout
        self.data = data

    @classmethod
    def create(cls, layout: RunLayout, settings: dict, data_files: Iterable[dict] = ()) -> "Manifest":
        """A new manifest with ``settings``; stages recorded in an existing ``run.json`` are kept so that
        finished stages whose inputs did not change are skipped."""
        previous = cls.load(layout)
        manifest = cls(layout, {
            "run_id": layout.run_id,
            "code_version": code_version(),
            "created": previous.data.get("created") if previous else _now(),
            "settings": settings,
            "data": list(data_files),
            "stages": previous.stages if previous else {},
        })
        manifest.save()
        return manifest

    @classmethod
    def load(cls, layout: RunLayout) -> "Manifest | None":
        """The manifest of ``layout``, or None when the run has none."""
        path = layout.manifest
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        for field in ("settings", "stages"):
            if not isinstance(data.get(field), dict):
                raise ValueError(f"{path}: field {field!r} missing or not an object")
        return cls(layout, data)

    @classmethod
    def require(cls, layout: RunLayout) -> "Manifest":
        """Like :meth:`load`, but a run without ``run.json`` is an error.

        Raises:
            FileNotFoundError: naming the missing ``run.json``.
        """
        manifest = cls.load(layout)
        if manifest is None:
            raise FileNotFoundError(f"{layout.manifest} not found: not a run directory written by "
                                    f"scripts/finetune.sh (python -m research.run finetune)")
        return manifest

    @property
    def settings(self) -> dict:
        return self.data["settings"]

    @property
    def stages(self) -> dict:
        return self.data["stages"]

    def save(self) -> None:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.layout.manifest, self.data)

    def stage_key(self, name: str) -> str | None:
        """Inputs key of a finished stage (what downstream stages record), else None."""
        record = self.stages.get(name)
        return record["key"] if record and record.get("status") == "done" else None

    def is_complete(self, name: str, inputs: dict) -> bool:
        """True when stage ``name`` is done with these ``inputs`` and all its recorded outputs exist."""
        record = self.stages.get(name)
        return bool(record and record.get("status") == "done" and record.get("key") == inputs_key(inputs)
                    and all(self.layout.resolve(p).exists() for p in record.get("outputs", ())))

    def output(self, name: str, index: int = 0) -> Path | None:
        """Path of a finished stage's ``index``-th output, or None when the stage is not done."""
        record = self.stages.get(name)
        if not record or record.get("status") != "done" or len(record.get("outputs", ())) <= index:
            return None
        return self.layout.resolve(record["outputs"][index])

    def mark(self, name: str, status: str, **fields) -> None:
        """Set a stage's status (and other fields) and save."""
        if status not in STATUSES:
            raise ValueError(f"unknown stage status {status!r}; one of {STATUSES}")
        record = self.stages.setdefault(name, {})
        record.update(status=status, **fields)
        self.save()


def run_stage(manifest: Manifest, name: str, inputs: dict, outputs: list[Path], work: Callable[[], None],
              *, force: bool = False, log: Callable[[str], None] = print) -> bool:
    """Run ``work()`` for stage ``name`` unless it is complete with these inputs; record the result.

    Args:
        inputs: JSON-able values that decide the stage's outputs (settings, input hashes, keys of the
            stages it reads from).
        outputs: files or directories the stage must leave; missing ones make the stage fail.
        force: run even when complete (e.g. the training stage under ``--resume``).

    Returns:
        True when ``work`` ran, False when the stage was skipped.

    Raises:
        Whatever ``work`` raises (the stage is recorded ``failed`` with the message first);
        RuntimeError: ``work`` returned but an output is missing.
    """
    if not force and manifest.is_complete(name, inputs):
        log(f"  skipped: done in an earlier attempt, inputs unchanged ({manifest.layout.manifest.name})")
        return False
    t0 = time.time()
    manifest.mark(name, "running", inputs=inputs, key=inputs_key(inputs), outputs=[], started=_now(),
                  finished=None, seconds=None, error=None)
    try:
        work()
        missing = [str(p) for p in outputs if not Path(p).exists()]
        if missing:
            raise RuntimeError(f"stage {name} finished without its outputs: {', '.join(missing)}")
    except BaseException as exc:
        manifest.mark(name, "failed", finished=_now(), seconds=round(time.time() - t0, 1),
                      error=f"{type(exc).__name__}: {exc}")
        raise
    manifest.mark(name, "done", outputs=[manifest.layout.relative(p) for p in outputs], finished=_now(),
                  seconds=round(time.time() - t0, 1))
    return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
