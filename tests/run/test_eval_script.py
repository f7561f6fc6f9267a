"""scripts/eval.sh on a training run's output: every evaluation, base model and LoRA, on the real files."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from research.rundir.layout import RunLayout
from research.rundir.manifest import Manifest
from research.run.settings import resolve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_eval_sh_runs_math_base_capability_and_logic_before_and_after(tiny_lora_run, tiny_train_data, tiny_6epoch_yaml,
                                                                      shared_data, tmp_path):
    work, env = tiny_train_data
    run = tmp_path / "run"  # a copy: the session's run directory is shared with other tests
    run.mkdir()
    for name in ("config.yaml", "lora.ckpt"):
        shutil.copy(tiny_lora_run / name, run / name)
    # The run's manifest names config, base checkpoint and template; eval.sh takes nothing else from
    # the caller (a template other than the default shows that it is read from there).
    settings = resolve({"config": str(tiny_6epoch_yaml), "load_checkpoint": str(work / "base.ckpt"), "template": "alpaca",
                        "target_style": "cot"})
    Manifest.create(RunLayout(run), settings.to_dict())
    args = ["bash", str(ROOT / "scripts/eval.sh"), "--run_dir", str(run),
            "--math", str(shared_data / "ascend2024_math/sample_dev.jsonl"),
            "--squad", str(shared_data / "squad_v1.1_partial/dev-v1.1.json"),
            "--logic", str(shared_data / "tianchi_logic/round1_train_data.jsonl"),
            "--limit", "2", "--max_new_tokens", "8", "--batch_size", "2"]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = run / "eval"
    # Each item set (and --limit) has directories of its own; the run's eval/math_* stay untouched.
    math, squad, logic = "math_sample_dev_first2", "base_dev-v1.1_first2", "logic_round1_train_data_first2"
    for sub in (f"{math}_base", f"{math}_lora", f"{squad}_base", f"{squad}_lora", f"{logic}_base", f"{logic}_lora"):
        assert (out / sub / "report.md").is_file() and (out / sub / "metrics.json").is_file(), sub
    assert not (out / "math_base").exists() and not (out / "logic_base").exists()
    math_lora = _json(out / f"{math}_lora/metrics.json")
    assert math_lora["overall"]["total"] == 2 and math_lora["source"]["lora_checkpoint"] == str(run / "lora.ckpt")
    assert math_lora["source"]["template"] == "alpaca" and math_lora["source"]["load_checkpoint"] == str(work / "base.ckpt")
    assert "accuracy before | accuracy after" in (out / f"{math}_lora/report.md").read_text()
    base_lora = _json(out / f"{squad}_lora/metrics.json")
    assert set(base_lora["retention"]) == {"mindformers.F1", "mindformers.Em", "squad.f1", "squad.exact_match"}
    assert isinstance(base_lora["pass"], bool) and base_lora["count"] == 2
    logic_lora = _json(out / f"{logic}_lora/metrics.json")
    assert logic_lora["problems"] == 2 and logic_lora["ensemble"]["questions"]["total"] == logic_lora["questions"]
    assert len((out / f"{logic}_lora/submission.jsonl").read_text().splitlines()) == 2
    assert proc.stdout.count("== ") == 7  # 3 evaluations x base/lora, done
    stages = Manifest.require(RunLayout(run)).stages
    assert [stages[f"eval_{n}_{m}"]["status"] for n in (math, squad, logic) for m in ("base", "lora")] \
        == ["done"] * 6
    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("skipped: done in an earlier attempt") == 6
