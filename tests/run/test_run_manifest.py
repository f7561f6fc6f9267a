"""run.json (research.rundir.manifest): stages skipped only when done, outputs present and inputs unchanged;
the loss-log follower behind the training progress bar; the eval plan per task."""
import json

import pytest

from research.rundir.layout import RunLayout
from research.rundir.manifest import Manifest, file_sha256, inputs_key, run_stage
from research.run.progress import LossFollower
from research.run.settings import resolve
from research.run.stages.evaluate import EVAL_PLANS, eval_plan
from research.run.stages.train import train_command

pytestmark = pytest.mark.unit


def _stage(manifest, inputs, out, calls, fail=False):
    def work():
        calls.append(inputs)
        if fail:
            raise RuntimeError("boom")
        out.write_text("done")
    return run_stage(manifest, "s", inputs, [out], work, log=lambda _: None)


def test_stage_runs_once_then_skips_until_inputs_or_outputs_change(tmp_path):
    layout = RunLayout(tmp_path / "run")
    manifest = Manifest.create(layout, {"seed": 0})
    out, calls = layout.root / "out.txt", []
    assert _stage(manifest, {"a": 1}, out, calls) is True
    assert _stage(manifest, {"a": 1}, out, calls) is False
    record = json.loads(layout.manifest.read_text())["stages"]["s"]
    assert record["status"] == "done" and record["outputs"] == ["out.txt"] and record["key"] == inputs_key({"a": 1})
    assert _stage(manifest, {"a": 2}, out, calls) is True  # inputs changed
    out.unlink()
    assert _stage(manifest, {"a": 2}, out, calls) is True  # output gone
    # a new attempt in the same directory keeps the finished stages
    again = Manifest.create(layout, {"seed": 0})
    assert _stage(again, {"a": 2}, out, calls) is False
    assert len(calls) == 3


def test_failed_stage_is_recorded_and_runs_again(tmp_path):
    layout = RunLayout(tmp_path / "run")
    manifest = Manifest.create(layout, {})
    out, calls = layout.root / "out.txt", []
    with pytest.raises(RuntimeError, match="boom"):
        _stage(manifest, {"a": 1}, out, calls, fail=True)
    record = Manifest.load(layout).stages["s"]
    assert record["status"] == "failed" and record["error"] == "RuntimeError: boom"
    assert _stage(manifest, {"a": 1}, out, calls) is True and len(calls) == 2


def test_stage_without_its_outputs_fails(tmp_path):
    manifest = Manifest.create(RunLayout(tmp_path / "run"), {})
    with pytest.raises(RuntimeError, match="finished without its outputs: .*missing.txt"):
        run_stage(manifest, "s", {}, [tmp_path / "missing.txt"], lambda: None, log=lambda _: None)
    assert manifest.stages["s"]["status"] == "failed"


def test_broken_manifest_is_named(tmp_path):
    layout = RunLayout(tmp_path)
    layout.manifest.write_text('{"settings": {},\n"stages": [1,}')
    with pytest.raises(ValueError, match=r"run.json: line 2: not valid JSON"):
        Manifest.load(layout)
    with pytest.raises(FileNotFoundError, match="run.json not found"):
        Manifest.require(RunLayout(tmp_path / "none"))


def test_file_sha256_and_code_version(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    data = Manifest.create(RunLayout(tmp_path / "run"), {}).data
    assert data["code_version"] and data["run_id"] == "run"


def test_loss_follower_reads_complete_lines_and_restarts_on_truncation(tmp_path):
    log = tmp_path / "loss.jsonl"
    follower = LossFollower(log)
    assert follower.poll() == []
    log.write_text('{"step": 1, "loss": 2.5}\n{"step": 2, "lo')
    assert [r["step"] for r in follower.poll()] == [1]
    with open(log, "a") as f:
        f.write('ss": 2.4}\n')
    assert follower.poll() == [{"step": 2, "loss": 2.4}]
    assert follower.poll() == []
    log.write_text('{"step": 1, "loss": 9.0}\n')  # a resumed/fresh run rewrote the log
    assert follower.poll() == [{"step": 1, "loss": 9.0}]


def test_eval_plan_per_task_and_training_command(tmp_path):
    layout = RunLayout(tmp_path / "run")
    s = resolve({"smoke": True})
    layout.data_dir.mkdir(parents=True)
    layout.data_report.write_text(json.dumps({"per_category": {"arithmetic": {"eval": 3}}}), encoding="utf-8")
    steps = eval_plan(s, layout)
    assert set(EVAL_PLANS) == {"math", "logic"}
    assert [(st.name, st.model, st.baseline) for st in steps] == [("math", "base", False), ("math", "lora", True)]
    assert steps[0].items == str(layout.eval_items)
    cmd = [str(c) for c in train_command(s, layout, layout.random_base, resume=True)]
    assert cmd[1:3] == ["-m", "research.llama3.train.finetune"] and cmd[-1] == "--resume"
    assert cmd[cmd.index("--stop_step") + 1] == "8" and cmd[cmd.index("--run_dir") + 1] == str(layout.root)
    dp = [str(c) for c in train_command(resolve({"smoke": True, "worker_num": 2}), layout, layout.random_base, False)]
    assert dp[0] == "bash" and dp[1].endswith("msrun_launcher.sh") and "--resume" not in dp


def test_training_command_carries_the_quantization(tmp_path):
    layout = RunLayout(tmp_path / "run")
    cmd = [str(c) for c in train_command(resolve({"smoke": True, "quantization": "nf4"}), layout,
                                         layout.random_base, False)]
    assert cmd[1:3] == ["-m", "research.llama3.train.torch_finetune"]
    assert cmd[cmd.index("--quantization") + 1] == "nf4" and cmd[cmd.index("--device") + 1] == "cpu"
