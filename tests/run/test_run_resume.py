"""`finetune.sh --resume` on a run killed during training: the data, preprocess, MindRecord and base
stages are skipped (their files untouched) and training continues from its newest checkpoint."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from research.rundir.layout import RunLayout
from research.rundir.manifest import Manifest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BEFORE_TRAINING = ("data", "preprocess", "mindrecord", "base")


def _steps(loss_log: Path) -> list[int]:
    if not loss_log.is_file():
        return []
    return [json.loads(line)["step"] for line in loss_log.read_text().splitlines() if line.endswith("}")]


def test_resume_after_kill_skips_data_stages_and_continues_training(tmp_path):
    layout = RunLayout(tmp_path / "run")
    env = {**os.environ, "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")}
    script = ["bash", str(ROOT / "scripts" / "finetune.sh")]
    first = subprocess.Popen([*script, "--smoke", "--stop_step", "12", "--save_steps", "2",
                              "--run_dir", str(layout.root)], cwd=tmp_path, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint_meta = layout.output_dir / "checkpoint" / "rank_0" / "meta.json"
    try:
        # wait until training has saved a full-state checkpoint and gone past it
        while not (checkpoint_meta.is_file() and len(_steps(layout.loss_log)) >= 5):
            assert first.poll() is None, "the run ended before it could be killed during training"
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the runner and its training process, as a crash would
        first.wait()

    manifest = Manifest.require(layout)
    assert [manifest.stages[s]["status"] for s in BEFORE_TRAINING] == ["done"] * len(BEFORE_TRAINING)
    assert manifest.stages["train"]["status"] == "running"  # killed mid-stage
    kept = [layout.generated, layout.conversations, layout.mindrecord, layout.random_base]
    stamps = [p.stat().st_mtime_ns for p in kept]

    resumed = subprocess.run([*script, "--resume", "--run_dir", str(layout.root)], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=1200)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert resumed.stdout.count("skipped: done in an earlier attempt") == len(BEFORE_TRAINING)
    assert [p.stat().st_mtime_ns for p in kept] == stamps
    assert "resuming from" in layout.log("train").read_text()
    assert _steps(layout.loss_log) == list(range(1, 13))  # each step once: the log was cut back to the checkpoint
    stages = Manifest.require(layout).stages
    assert all(record["status"] == "done" for record in stages.values()), stages
    assert Manifest.require(layout).settings["save_steps"] == 2
