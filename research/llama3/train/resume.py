"""Where a killed or stopped run picks up again: MindFormers' full-state checkpoints under ``output_dir``.

MindFormers' ``CheckpointMonitor`` saves the whole training state (network, optimizer moments,
``global_step``, ``step_num``, ``epoch_num``, loss scale) to
``<output_dir>/checkpoint/rank_<N>/<prefix>_rank_<N>-<epoch>_<step>.ckpt`` and records the newest
in ``meta.json`` beside it. MindSpore writes each file as ``*.tmp`` and renames it, and MindFormers
replaces ``meta.json`` with ``os.replace``, so a SIGKILL leaves either the previous checkpoint or the
complete new one, never a half-written file under a ``.ckpt`` name.
"""
import json
import os
from dataclasses import dataclass

from preprocess.atomic import write_jsonl_atomic


@dataclass(frozen=True)
class ResumePoint:
    """The newest complete full-state checkpoint of one rank.

    Attributes:
        checkpoint_dir: ``<output_dir>/checkpoint``, the value MindFormers wants in ``load_checkpoint``
            with ``resume_training: True`` (it picks ``rank_<N>/`` itself).
        checkpoint: path of the ``.ckpt`` file ``meta.json`` names.
        step: global steps done when it was saved (its ``step_num`` entry).
    """
    checkpoint_dir: str
    checkpoint: str
    step: int


def find_resume_point(output_dir: str, rank: int = 0) -> ResumePoint | None:
    """Return the newest full-state checkpoint of ``rank`` under ``output_dir``, or None when there is none.

    Raises:
        ValueError: ``meta.json`` names a file that is missing or has no ``step_num`` entry (not a
            MindFormers training checkpoint).
    """
    import mindspore as ms

    checkpoint_dir = os.path.join(output_dir, "checkpoint")
    meta_path = os.path.join(checkpoint_dir, f"rank_{rank}", "meta.json")
    if not os.path.isfile(meta_path):
        return None
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    checkpoint = os.path.join(os.path.dirname(meta_path), meta["last_ckpt_file"])
    if not os.path.isfile(checkpoint):
        raise ValueError(f"{meta_path}: last_ckpt_file {meta['last_ckpt_file']!r} does not exist")
    entries = ms.load_checkpoint(checkpoint, choice_func=lambda name: name == "step_num")
    if "step_num" not in entries:
        raise ValueError(f"{checkpoint}: no step_num entry; not a MindFormers training checkpoint")
    return ResumePoint(checkpoint_dir, checkpoint, int(entries["step_num"].asnumpy()))


def truncate_loss_log(path: str, step: int) -> int:
    """Drop the lines of ``path`` (JSONL with ``step``) after ``step``: the resumed run writes them again.

    Returns the number of lines kept; a missing file keeps 0. Rewritten atomically. A last line cut
    short by the kill is dropped.

    Raises:
        ValueError: a line before the last is not JSON (``path:line``).
    """
    if not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n") if line.strip()]
    rows = []
    for lineno, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if lineno < len(lines):
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    kept = [r for r in rows if r.get("step", 0) <= step]
    write_jsonl_atomic(path, kept)
    return len(kept)
