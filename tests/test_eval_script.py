"""scripts/eval.sh on a training run's output: every evaluation, base model and LoRA, on the real files."""
import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_eval_sh_runs_math_base_capability_and_logic_before_and_after(i5_tiny_run, i5_tiny_data, shared_data,
                                                                      tmp_path):
    work, env = i5_tiny_data
    run = tmp_path / "run"  # a copy: the session's run directory is shared with other tests
    run.mkdir()
    for name in ("config.yaml", "lora.ckpt"):
        shutil.copy(i5_tiny_run / name, run / name)
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts/eval.sh"), "--run_dir", str(run), "--load_checkpoint", str(work / "base.ckpt"),
         "--math", str(shared_data / "ascend2024_math/sample_dev.jsonl"),
         "--squad", str(shared_data / "squad_v1.1_partial/dev-v1.1.json"),
         "--logic", str(shared_data / "tianchi_logic/round1_train_data.jsonl"),
         "--limit", "2", "--max_new_tokens", "8", "--batch_size", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = run / "eval"
    for sub in ("math_base", "math_lora", "base_dev-v1.1_base", "base_dev-v1.1_lora", "logic_base", "logic_lora"):
        assert (out / sub / "report.md").is_file() and (out / sub / "metrics.json").is_file(), sub
    math_lora = _json(out / "math_lora/metrics.json")
    assert math_lora["overall"]["total"] == 2 and math_lora["source"]["lora_checkpoint"] == str(run / "lora.ckpt")
    assert "accuracy before | accuracy after" in (out / "math_lora/report.md").read_text()
    base_lora = _json(out / "base_dev-v1.1_lora/metrics.json")
    assert set(base_lora["retention"]) == {"mindformers.F1", "mindformers.Em", "squad.f1", "squad.exact_match"}
    assert isinstance(base_lora["pass"], bool) and base_lora["count"] == 2
    logic = _json(out / "logic_lora/metrics.json")
    assert logic["problems"] == 2 and logic["ensemble"]["questions"]["total"] == logic["questions"]
    assert len((out / "logic_lora/submission.jsonl").read_text().splitlines()) == 2
    assert proc.stdout.count("== ") == 4  # math, base capability, logic, done
