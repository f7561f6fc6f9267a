"""LoRA fine-tuning through MindFormers' Trainer on CPU (tiny random Llama, real tokenizer, real MindRecord)."""
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml"


@pytest.fixture(scope="module")
def trained(tiny_lora_run):
    """12 steps on 8 repeated conversations from a random tiny base (conftest: tiny_lora_run); the work dir."""
    return tiny_lora_run.parent


def test_loss_log_has_every_step_and_goes_down(trained):
    rows = [json.loads(line) for line in (trained / "uninterrupted" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 13))  # stop_step honoured
    losses = np.array([r["loss"] for r in rows])
    assert np.isfinite(losses).all()
    assert losses[-2:].mean() < losses[:2].mean() - 0.05, losses


def test_lora_checkpoint_holds_only_lora_weights(trained):
    import mindspore as ms

    params = ms.load_checkpoint(str(trained / "uninterrupted" / "lora.ckpt"))
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

    from research.llama3.train.param_count import lora_param_counts

    counts = json.loads((trained / "uninterrupted" / "params.json").read_text())
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

    cfg = yaml.safe_load((trained / "uninterrupted" / "config.yaml").read_text())
    assert cfg["model"]["model_config"]["pet_config"]["lora_rank"] == 8
    assert cfg["load_checkpoint"].endswith("base.ckpt")
    assert {"type": "TrainCallBack", "stop_step": 12} in cfg["callbacks"]
    assert cfg["lr_schedule"]["total_steps"] == 12  # the cosine schedule spans the steps actually run


def test_throughput_and_peak_memory_logged(trained):
    rows = [json.loads(line) for line in (trained / "uninterrupted" / "loss.jsonl").read_text().splitlines()]
    # batch 4 x seq 128 tokens a step; host RSS of a MindSpore process is at least ~100 MB
    for r in rows:
        assert r["tokens_per_s"] == pytest.approx(4 * 128 / r["step_s"], rel=0.05, abs=1.0)
        assert 100 < r["peak_host_mb"] < 24 * 1024
    assert [r["peak_host_mb"] for r in rows] == sorted(r["peak_host_mb"] for r in rows)  # a running peak


def test_checkpoints_every_n_steps_and_every_epoch(trained):
    import mindspore as ms

    out = trained / "uninterrupted" / "output"
    # --save_steps 2 with the YAML's keep_checkpoint_max 2: the full state of steps 10 and 12 is kept
    full = sorted(p.name for p in (out / "checkpoint" / "rank_0").glob("*.ckpt"))
    assert full == ["llama_tiny_rank_0-5_2.ckpt", "llama_tiny_rank_0-6_2.ckpt"]
    state = ms.load_checkpoint(str(out / "checkpoint" / "rank_0" / full[-1]))
    assert int(state["step_num"].asnumpy()) == 12
    assert any(k.startswith("adam_m.") and "mindpet_delta_lora" in k for k in state)  # optimizer moments
    assert "model.tok_embeddings.embedding_weight" in state  # and the frozen base: resumable alone
    # 8 records, batch 4: 2 steps an epoch, 6 epochs, one LoRA-only file each
    epochs = sorted((out / "checkpoint_epoch" / "rank_0").glob("lora_epoch*.ckpt"))
    assert [p.name for p in epochs] == [f"lora_epoch{e}.ckpt" for e in range(1, 7)]
    last = ms.load_checkpoint(str(epochs[-1]))
    final = ms.load_checkpoint(str(trained / "uninterrupted" / "lora.ckpt"))
    names = [k for k in final if "mindpet_delta" in k]
    assert len(names) == 8 and sorted(k for k in last if "mindpet_delta" in k) == sorted(names)
    for name in names:
        np.testing.assert_array_equal(last[name].asnumpy(), final[name].asnumpy())
    first = ms.load_checkpoint(str(epochs[0]))
    assert not np.array_equal(first[names[1]].asnumpy(), last[names[1]].asnumpy())


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tiny_train_data, tiny_6epoch_yaml, tiny_finetune_args):
    """A base checkpoint whose embedding row of one token is NaN, and data read in order so that token
    first comes in step 2: step 1 trains and is saved, step 2's loss is NaN and must stop the run."""
    import subprocess
    import sys

    import mindspore as ms
    from mindspore.mindrecord import FileReader

    from research.llama3.train.resume import find_resume_point

    work, env = tiny_train_data
    reader = FileReader(str(work / "train.mindrecord"))
    records = [r["input_ids"][:-1] for r in reader.get_next()]
    reader.close()
    step1, step2 = set(np.concatenate(records[:4]).tolist()), set(np.concatenate(records[4:8]).tolist())
    token = min(step2 - step1)
    base = ms.load_checkpoint(str(work / "base.ckpt"))
    emb = base["model.tok_embeddings.embedding_weight"].asnumpy().copy()
    emb[token] = np.nan
    name = "model.tok_embeddings.embedding_weight"
    base[name] = ms.Parameter(ms.Tensor(emb), name=name)
    ms.save_checkpoint([{"name": k, "data": v} for k, v in base.items()], str(work / "poisoned.ckpt"))
    cfg = work / "tiny_in_order.yaml"
    cfg.write_text(tiny_6epoch_yaml.read_text().replace("shuffle: True", "shuffle: False"))
    args = [str(a) for a in tiny_finetune_args(work, cfg, "diverged", "--save_steps", "1")]
    args[args.index(str(work / "base.ckpt"))] = str(work / "poisoned.ckpt")
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)

    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [json.loads(line) for line in (work / "diverged" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and np.isfinite(rows[0]["loss"]) and np.isnan(rows[1]["loss"])
    assert "loss became nan at step 2; stopping" in proc.stderr
    point = find_resume_point(str(work / "diverged" / "output"))
    assert point.step == 1 and f"last good checkpoint: {point.checkpoint}" in proc.stderr
    saved = ms.load_checkpoint(point.checkpoint)
    lora = [k for k in saved if k.startswith("model.") and "mindpet_delta" in k]
    assert len(lora) == 8 and all(np.isfinite(saved[k].asnumpy()).all() for k in lora)
    assert len(list((work / "diverged" / "output" / "checkpoint" / "rank_0").glob("*.ckpt"))) == 1
    assert not (work / "diverged" / "lora.ckpt").exists()
