"""LoRA fine-tuning through MindFormers' Trainer on CPU (tiny random Llama, real tokenizer, real MindRecord)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml"


def _run(args, cwd, env):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{args[:2]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train 12 steps on 8 repeated conversations from a random tiny base; return the run dir."""
    work = tmp_path_factory.mktemp("finetune")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOCAL_DEFAULT_PATH": str(work / "mf"), "GLOG_v": "3"}
    convs = [{"id": f"c{i}", "conversations": [
        {"from": "human", "value": f"计算 {i}.25 + 1.50 等于多少？"},
        {"from": "gpt", "value": f"{i}.25 + 1.50 = {i + 1}.75"}]} for i in range(8)]
    (work / "conv.json").write_text(json.dumps(convs, ensure_ascii=False), encoding="utf-8")
    _run(["-m", "preprocess.mindrecord", "--dataset_type", "qa", "--input_glob", str(work / "conv.json"),
          "--config", str(TINY), "--seq_length", "128", "--output_file", str(work / "train.mindrecord")], ROOT, env)
    _run(["-m", "research.llama3.random_init", "--config", str(TINY), "--output", str(work / "base.ckpt")], ROOT, env)
    # 8 records at batch 4 repeat for 6 epochs' worth of steps; the YAML's 1 epoch would give 2 steps.
    cfg = work / "tiny.yaml"
    text = TINY.read_text(encoding="utf-8").replace("epochs: 1", "epochs: 6")
    cfg.write_text(text, encoding="utf-8")
    _run(["-m", "research.llama3.finetune", "--config", str(cfg), "--train_dataset", str(work / "train.mindrecord"),
          "--load_checkpoint", str(work / "base.ckpt"), "--output_dir", str(work / "output"),
          "--run_dir", str(work / "run"), "--stop_step", "12"], ROOT, env)
    return work


def test_loss_log_has_every_step_and_goes_down(trained):
    rows = [json.loads(line) for line in (trained / "run" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 13))  # stop_step honoured
    losses = np.array([r["loss"] for r in rows])
    assert np.isfinite(losses).all()
    assert losses[-2:].mean() < losses[:2].mean() - 0.05, losses


def test_lora_checkpoint_holds_only_lora_weights(trained):
    import mindspore as ms

    params = ms.load_checkpoint(str(trained / "run" / "lora.ckpt"))
    names = {n for n in params if "mindpet_delta" in n}
    # 2 layers x (wq, wv) x (lora_a, lora_b); the tiny model: hidden 64, 2 kv heads of 16 -> wv out 32.
    assert len(names) == 8
    assert tuple(params["model.layers.0.attention.wq.mindpet_delta_lora_a"].shape) == (8, 64)
    assert tuple(params["model.layers.0.attention.wq.mindpet_delta_lora_b"].shape) == (64, 8)
    assert tuple(params["model.layers.1.attention.wv.mindpet_delta_lora_b"].shape) == (32, 8)
    assert not any(n.startswith("model.") and "mindpet_delta" not in n for n in params)
    # lora_b starts at zero; training must have moved it.
    assert np.abs(params["model.layers.0.attention.wq.mindpet_delta_lora_b"].asnumpy()).max() > 0


def test_parameter_counts_reported(trained):
    import yaml

    from research.llama3.param_count import lora_param_counts

    counts = json.loads((trained / "run" / "params.json").read_text())
    # per layer: wq r*(64+64) + wv r*(64+32) with r = 8
    assert counts["trainable"] == 2 * (8 * (64 + 64) + 8 * (64 + 32))
    assert counts["base"] == counts["total"] - counts["trainable"]
    assert counts["ratio"] == pytest.approx(counts["trainable"] / counts["base"])
    # the analytic count from the YAML agrees with the built network
    expected = lora_param_counts(yaml.safe_load(TINY.read_text())["model"]["model_config"])
    assert {k: counts[k] for k in ("trainable", "base", "total")} == \
        {k: expected[k] for k in ("trainable", "base", "total")}


def test_effective_config_saved(trained):
    import yaml

    cfg = yaml.safe_load((trained / "run" / "config.yaml").read_text())
    assert cfg["model"]["model_config"]["pet_config"]["lora_rank"] == 8
    assert cfg["load_checkpoint"].endswith("base.ckpt")
    assert {"type": "TrainCallBack", "stop_step": 12} in cfg["callbacks"]
    assert cfg["lr_schedule"]["total_steps"] == 12  # the cosine schedule spans the steps actually run
