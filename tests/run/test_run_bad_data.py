"""bash scripts/finetune.sh --smoke --data FILE with a file that gives no record: the runner stops at
preprocess and shows the cause and the stage's log."""
import subprocess
from pathlib import Path

import pytest

from tests.preprocess.test_preprocess_bad_input_cli import bad_inputs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name, cause", [
    ("empty", "no records read from {path} (empty or blank)"),
    ("gb18030", "all 2 lines of {path} rejected (first: {path}:1: invalid UTF-8 at byte 13"),
])
def test_runner_shows_the_cause_and_the_log(tmp_path, name, cause):
    path = bad_inputs(tmp_path)[name]
    run_dir = tmp_path / "run"
    proc = subprocess.run(["bash", "scripts/finetune.sh", "--smoke", "--data", str(path), "--run_dir", str(run_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    err = proc.stdout + proc.stderr
    log = run_dir / "preprocess.log"
    assert f"stage preprocess failed (exit 1); see {log}" in err, err[-3000:]
    assert f"python -m preprocess: error: {cause.format(path=path)}" in log.read_text(encoding="utf-8")
    assert err.count(f"python -m preprocess: error: {cause.format(path=path)}") >= 2  # on the console and in the tail
    assert "eval_size" not in err
