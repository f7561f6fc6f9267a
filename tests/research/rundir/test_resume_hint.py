"""The command an interrupted training's messages give to continue it (RunLayout.resume_hint)."""
import pytest

from research.rundir.layout import LOGS, RunLayout

pytestmark = pytest.mark.unit


def test_a_run_under_logs_is_named_by_its_run_id():
    assert RunLayout.for_run_id("r1").resume_hint == "resume with `bash scripts/finetune.sh --resume --run_id r1`"
    assert RunLayout(LOGS / "r2").resume_hint.endswith("--resume --run_id r2`")


def test_a_run_elsewhere_is_named_by_its_directory(tmp_path):
    run = tmp_path / "elsewhere"
    assert RunLayout(run).resume_hint == f"resume with `bash scripts/finetune.sh --resume --run_dir {run}`"
