"""Kill a LoRA run with SIGKILL at a random step, resume it, and end where an uninterrupted run ends.

The reference is conftest's ``tiny_lora_run``: 12 steps, full-state checkpoints every 2 steps, LoRA
dropout 0 (the dropout kernels' random state is not part of a checkpoint), same seed and data.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "loss.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r["loss"] for r in rows}


def _load(path: Path) -> dict:
    import mindspore as ms

    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if "mindpet_delta" in k}


def _kill_at_step(args, env, run_dir: Path, step: int) -> None:
    """Start the run and SIGKILL it once its loss log shows ``step``; no clean shutdown of any kind."""
    proc = subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = run_dir / "loss.jsonl"
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            # a fresh run logs steps 1, 2, ... one complete line each
            if log.is_file() and log.read_text().count("\n") >= step:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended (status {proc.returncode}) before step {step}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_then_resume_matches_uninterrupted(tiny_train_data, tiny_6epoch_yaml, tiny_lora_run, python_cli,
                                                   tiny_finetune_args):
    import mindspore as ms

    from research.llama3.train.resume import find_resume_point

    work, env = tiny_train_data
    kill_step = random.SystemRandom().randint(3, 10)
    args = tiny_finetune_args(work, tiny_6epoch_yaml, "killed")
    _kill_at_step(args, env, work / "killed", kill_step)

    # Every checkpoint left under a final name is complete (MindSpore writes *.tmp, then renames).
    saved = sorted((work / "killed" / "output").rglob("*.ckpt"))
    assert saved, f"killed at step {kill_step} with no checkpoint"
    for path in saved:
        assert ms.load_checkpoint(str(path)), path
    point = find_resume_point(str(work / "killed" / "output"))
    assert point and point.step % 2 == 0 and 2 <= point.step <= kill_step + 1, (kill_step, point)

    proc = python_cli([*args, "--resume"], env)
    assert "resuming from" in proc.stdout

    expected, got = _losses(tiny_lora_run), _losses(work / "killed")
    assert sorted(got) == list(range(1, 13)), f"killed at {kill_step}, resumed at {point.step}: {sorted(got)}"
    assert got == expected, f"killed at {kill_step}, resumed at {point.step}"
    want, have = _load(tiny_lora_run / "lora.ckpt"), _load(work / "killed" / "lora.ckpt")
    assert want.keys() == have.keys() and len(want) == 8
    for name in want:
        np.testing.assert_array_equal(have[name], want[name], err_msg=name)
    # The per-epoch LoRA files of epochs finished after the resume match the uninterrupted ones too.
    epoch_dir = Path("output") / "checkpoint_epoch" / "rank_0"
    for epoch in range(point.step // 2 + 1, 7):
        a = _load(tiny_lora_run / epoch_dir / f"lora_epoch{epoch}.ckpt")
        b = _load(work / "killed" / epoch_dir / f"lora_epoch{epoch}.ckpt")
        for name in a:
            np.testing.assert_array_equal(b[name], a[name], err_msg=f"epoch {epoch} {name}")


def test_truncate_loss_log_drops_later_steps_and_a_torn_last_line(tmp_path):
    import pytest

    from research.llama3.train.resume import truncate_loss_log

    log = tmp_path / "loss.jsonl"
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 8)) + '{"step": 8, "lo')
    assert truncate_loss_log(str(log), 4) == 4
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3, 4]
    assert truncate_loss_log(str(tmp_path / "absent.jsonl"), 4) == 0
    log.write_text('{"step": 1, "loss": 2.0}\nnot json\n{"step": 3, "loss": 1.0}\n')
    with pytest.raises(ValueError, match=r"loss.jsonl:2: not valid JSON"):
        truncate_loss_log(str(log), 4)
