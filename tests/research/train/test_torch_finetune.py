"""research.llama3.train.torch_finetune on CPU: a tiny LoRA run from a real MindRecord, its outputs and their parity."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from preprocess.cli import run_main
from research.llama3.train import torch_data, torch_finetune, torch_loop
from research.llama3.train.lr_schedule import mindformers_lr
from research.llama3.config.model_config import LlamaDims
from research.llama3.checkpoint.to_hf import build_hf_model

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml"
STEPS = 12


def conversations(n):
    return [{"id": f"c{i}", "conversations": [
        {"from": "human", "value": f"计算 {i}.25 + 1.50 等于多少？" + " 请写出步骤。" * (i % 3)},
        {"from": "gpt", "value": f"{i}.25 + 1.50 = {i + 1}.75"}]} for i in range(n)]


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """Train STEPS steps on 8 conversations (YAML epochs raised to 6) from a random tiny base."""
    from research.llama3.records.mindrecord import main as mindrecord_main
    from research.llama3.checkpoint.random_init import init_random_checkpoint

    work = tmp_path_factory.mktemp("torch_finetune")
    (work / "conv.json").write_text(json.dumps(conversations(8), ensure_ascii=False), encoding="utf-8")
    assert mindrecord_main(["--input_glob", str(work / "conv.json"), "--config", str(TINY), "--seq_length", "128",
                            "--output_file", str(work / "train.mindrecord")]) == 0
    init_random_checkpoint(str(TINY), str(work / "base.ckpt"))
    cfg = work / "tiny.yaml"
    cfg.write_text(TINY.read_text(encoding="utf-8").replace("epochs: 1", "epochs: 6"), encoding="utf-8")
    assert torch_finetune.main(["--config", str(cfg), "--train_dataset", str(work / "train.mindrecord"),
                                "--load_checkpoint", str(work / "base.ckpt"), "--output_dir", str(work / "output"),
                                "--run_dir", str(work / "run"), "--stop_step", str(STEPS), "--device", "cpu"]) == 0
    return work


def test_loss_goes_down_with_the_yaml_schedule(torch_run):
    rows = [json.loads(line) for line in (torch_run / "run" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    losses = np.array([r["loss"] for r in rows])
    assert np.isfinite(losses).all()
    assert losses[-2:].mean() < losses[:2].mean() - 0.05, losses
    lr = mindformers_lr(yaml.safe_load(TINY.read_text())["lr_schedule"], STEPS)
    assert [r["lr"] for r in rows] == pytest.approx([lr(k) for k in range(STEPS)])
    assert all(r["tokens_per_s"] > 0 and r["global_norm"] > 0 for r in rows)


def test_parameter_counts_match_the_mindformers_definition(torch_run):
    from research.llama3.train.param_count import lora_param_counts

    counts = json.loads((torch_run / "run" / "params.json").read_text())
    expected = lora_param_counts(yaml.safe_load(TINY.read_text())["model"]["model_config"])
    assert counts["trainable"] == 2 * (8 * (64 + 64) + 8 * (64 + 32))
    assert {k: counts[k] for k in ("trainable", "base", "total")} == \
        {k: expected[k] for k in ("trainable", "base", "total")}


def test_lora_ckpt_through_eval_path_equals_peft_model(torch_run):
    import mindspore as ms
    from peft import PeftModel

    params = ms.load_checkpoint(str(torch_run / "run" / "lora.ckpt"))
    assert sorted(params) == sorted(f"model.layers.{i}.attention.{m}.mindpet_delta_lora_{ab}"
                                    for i in range(2) for m in ("wq", "wv") for ab in "ab")
    assert tuple(params["model.layers.1.attention.wv.mindpet_delta_lora_b"].shape) == (32, 8)
    assert np.abs(params["model.layers.0.attention.wq.mindpet_delta_lora_b"].asnumpy()).max() > 0

    model_config = yaml.safe_load(TINY.read_text())["model"]["model_config"]
    dims, pet = LlamaDims.from_mindformers(model_config), model_config["pet_config"]
    base = str(torch_run / "base.ckpt")
    # what eval.math --load_checkpoint --lora_checkpoint builds
    merged = build_hf_model(base, dims, lora_ckpt=str(torch_run / "run" / "lora.ckpt"),
                            lora_alpha=pet["lora_alpha"], lora_rank=pet["lora_rank"])
    peft_model = PeftModel.from_pretrained(build_hf_model(base, dims), torch_run / "run" / "adapter").eval()
    ids = torch.from_numpy(np.random.default_rng(0).integers(3, 2000, size=(2, 24)))
    with torch.no_grad():
        got, expected = merged(ids).logits, peft_model(ids).logits
        with peft_model.disable_adapter():
            untrained = peft_model(ids).logits
    assert float((got - expected).norm() / expected.norm()) < 1e-5
    assert float((untrained - expected).norm() / expected.norm()) > 1e-4


def test_packing_keeps_the_loss_and_drops_padding(torch_run):
    settings = torch_data.load_settings(str(TINY))
    ids, labels = torch_data.read_mindrecord(str(torch_run / "train.mindrecord"), settings.seq_length)
    # as records of seq_length 256 (right-padded), two of these ~90-token records fit in one row
    ids = np.pad(ids, ((0, 0), (0, 128)), constant_values=settings.pad_id)
    labels = np.pad(labels, ((0, 0), (0, 128)), constant_values=-100)
    plain = torch_data.unpacked_rows(ids, labels, settings.pad_id, settings.ignore_id)
    packed = torch_data.packed_rows(ids, labels, settings.pad_id, settings.ignore_id)
    assert packed["tokens"].shape[0] < plain["tokens"].shape[0]
    assert (packed["targets"] != -100).sum() == (plain["targets"] != -100).sum()
    # the second record starts again at position 0 inside the first packed row
    assert (packed["position_ids"][0] == 0).sum() >= 2

    torch.manual_seed(0)
    model = torch_loop.build_lora_model(None, LlamaDims.from_mindformers(settings.model_config),
                                            settings.pet_config, torch.float32).eval()
    loss = torch_loop.CausalLMLoss(model)
    with torch.no_grad():
        a = [loss(**{k: torch.from_numpy(v) for k, v in rows.items()}) for rows in (plain, packed)]
    assert int(a[0][1]) == int(a[1][1])
    assert abs(float(a[0][0]) - float(a[1][0])) / float(a[0][0]) < 1e-5


def test_conversation_json_trains_on_the_same_records(torch_run, tmp_path):
    run = tmp_path / "run"
    assert torch_finetune.main(["--config", str(TINY), "--train_dataset", str(torch_run / "conv.json"),
                                "--load_checkpoint", str(torch_run / "base.ckpt"), "--output_dir", str(tmp_path / "out"),
                                "--run_dir", str(run), "--stop_step", "1", "--device", "cpu", "--seed", "3"]) == 0
    for a, b in zip(torch_data.read_mindrecord(str(tmp_path / "out" / "train.mindrecord"), 128),
                    torch_data.read_mindrecord(str(torch_run / "train.mindrecord"), 128)):
        np.testing.assert_array_equal(a, b)
    assert len((run / "loss.jsonl").read_text().splitlines()) == 1
    assert (run / "adapter" / "adapter_model.safetensors").is_file() and (run / "lora.ckpt").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["torch_finetune"]["seed"] == 3


def test_bad_inputs_are_named(torch_run, tmp_path, capsys):
    args = ["--load_checkpoint", str(torch_run / "base.ckpt"), "--output_dir", str(tmp_path), "--run_dir",
            str(tmp_path / "run"), "--device", "cpu"]
    assert run_main(torch_finetune.main, ["--config", str(TINY), "--train_dataset", str(tmp_path / "absent.mindrecord"),
                                *args]) == 2
    assert "absent.mindrecord" in capsys.readouterr().err
    cfg = tmp_path / "seq64.yaml"
    cfg.write_text(TINY.read_text().replace("seq_length: 128", "seq_length: 64"))
    assert run_main(torch_finetune.main, ["--config", str(cfg), "--train_dataset", str(torch_run / "train.mindrecord"),
                                *args]) == 2
    assert "record 0 field input_ids has shape (129,)" in capsys.readouterr().err


def test_torchrun_two_processes_match_one(torch_run, tmp_path, free_port):
    """Global batch 4 as 2 ranks x 2 (gloo, CPU) trains like 1 process x 4."""
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(TINY.read_text().replace("batch_size: 4", "batch_size: 2").replace("epochs: 1", "epochs: 6"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "GLOG_v": "3"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(free_port()), "-m", "research.llama3.train.torch_finetune", "--config", str(cfg),
                           "--train_dataset", str(torch_run / "train.mindrecord"), "--load_checkpoint",
                           str(torch_run / "base.ckpt"), "--output_dir", str(tmp_path / "out"), "--run_dir",
                           str(tmp_path / "run"), "--stop_step", "3", "--device", "cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = [json.loads(line)["loss"] for line in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    single = [json.loads(line)["loss"] for line in (torch_run / "run" / "loss.jsonl").read_text().splitlines()][:3]
    # Step 1's loss is computed before any update: the same rows, so the same mean.
    assert ddp[0] == pytest.approx(single[0], rel=1e-6)
    # Later steps differ in rounding only: the ranks' gradients are summed in another order than one batch's.
    assert ddp == pytest.approx(single, rel=1e-3)
    # The gradient norm shows how the summed loss is scaled across ranks (an error would be a factor of 2).
    norms = [json.loads(line)["global_norm"] for path in (tmp_path, torch_run)
             for line in (path / "run" / "loss.jsonl").read_text().splitlines()[:1]]
    assert norms[0] == pytest.approx(norms[1], rel=0.02)


def test_hf_directory_base_equals_mindformers_checkpoint(torch_run, tmp_path):
    from dataclasses import replace

    from research.llama3.checkpoint.convert_hf import convert_mindformers_to_hf

    settings = torch_data.load_settings(str(TINY))
    dims = LlamaDims.from_mindformers(settings.model_config)
    convert_mindformers_to_hf(torch_run / "base.ckpt", dims, tmp_path / "hf")
    models = []
    for base in (str(torch_run / "base.ckpt"), str(tmp_path / "hf")):
        torch.manual_seed(0)  # the same LoRA A initialisation
        models.append(torch_loop.build_lora_model(base, dims, settings.pet_config, torch.float32).eval())
    ids = torch.from_numpy(np.random.default_rng(1).integers(3, 2000, size=(1, 16)))
    with torch.no_grad():
        assert torch.equal(models[0](ids).logits, models[1](ids).logits)
    with pytest.raises(ValueError, match="dims differ"):
        torch_loop.build_lora_model(str(tmp_path / "hf"), replace(dims, rms_norm_eps=1e-6),
                                        settings.pet_config, torch.float32)
