"""A progress bar over training steps, fed by the training callback's own ``loss.jsonl``.

The MindFormers entry (``research.llama3.train.callbacks.LossJsonlMonitor``) and the torch entry both append
one JSON line per step (``step``, ``loss``, ``tokens_per_s``, ...); following that file shows the same
numbers the report uses, whatever the backend, while the full console output goes to ``train.log``.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tqdm import tqdm


class LossFollower:
    """Reads the complete lines appended to a JSONL file since the last call.

    A line still being written (no trailing newline) waits for the next call; a file that shrank
    (the training entry truncates the log when it resumes, or removes it for a fresh start) is read
    again from its start.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._offset = 0

    def poll(self) -> list[dict]:
        """New records (dicts) in file order; [] when the file does not exist yet."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self._offset = 0
            return []
        if size < self._offset:
            self._offset = 0
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        return [json.loads(line) for line in chunk[:end].decode("utf-8").splitlines() if line.strip()]


def show_record(bar: tqdm, record: dict) -> None:
    """Move ``bar`` to the record's step and show its loss and throughput."""
    bar.n = record["step"]
    postfix = {"loss": f"{record['loss']:.4f}"}
    if "tokens_per_s" in record:
        postfix["tok/s"] = f"{record['tokens_per_s']:.0f}"
    bar.set_postfix(postfix, refresh=False)
    bar.refresh()


def follow_training(proc: subprocess.Popen, loss_log: str | Path, total: int | None,
                    poll_s: float = 0.5) -> int:
    """Show a tqdm bar of ``proc``'s training steps until it exits; return its exit status.

    Args:
        total: steps the run will reach (``--stop_step``), or None when unknown (the YAML's epochs).
    """
    follower = LossFollower(loss_log)
    with tqdm(total=total or None, desc="train", unit="step", dynamic_ncols=True) as bar:
        while True:
            finished = proc.poll() is not None
            for record in follower.poll():
                show_record(bar, record)
            if finished:
                return proc.returncode
            time.sleep(poll_s)
