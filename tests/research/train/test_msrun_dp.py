"""Two CPU workers under msrun (scripts/msrun_launcher.sh) train the tiny LoRA data-parallel.

Each rank reads its own shard, the gradients are all-reduced, so both ranks end with the same LoRA
weights; the per-rank checkpoints then merge into one (research.llama3.checkpoint.merge_ranks).
"""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DP2 = ROOT / "configs" / "tiny" / "finetune_lora_cpu_dp2.yaml"


@pytest.fixture(scope="module")
def dp_run(tiny_train_data, free_port):
    """4 steps (2 epochs of 8 records at global batch 2 x 2 ranks) by 2 msrun workers; the work dir."""
    work, env = tiny_train_data
    run = work / "dp2"
    cfg = work / "dp2.yaml"
    cfg.write_text(DP2.read_text().replace("epochs: 1", "epochs: 2"))
    proc = subprocess.run(
        ["bash", ROOT / "scripts" / "msrun_launcher.sh", "--worker_num", "2", "--master_port", str(free_port()),
         "--cluster_time_out", "300", "--log_dir", run / "msrun", "--",
         "--config", cfg, "--train_dataset", work / "train.mindrecord", "--load_checkpoint", work / "base.ckpt",
         "--output_dir", run / "output", "--run_dir", run, "--save_steps", "2"],
        cwd=work, env=env, capture_output=True, text=True, timeout=900)
    logs = "".join(p.read_text()[-2000:] for p in sorted((run / "msrun").glob("worker_*.log")))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + logs
    return run


def _losses(path: Path) -> list[float]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    return [r["loss"] for r in rows]


def test_per_rank_logs_and_sharded_data(dp_run):
    assert {p.name for p in (dp_run / "msrun").iterdir()} >= {"scheduler.log", "worker_0.log", "worker_1.log"}
    for rank in (0, 1):
        assert "trainable params: 3,584" in (dp_run / "msrun" / f"worker_{rank}.log").read_text()
    # the same model on different records: the ranks' losses differ at every step
    rank0, rank1 = _losses(dp_run / "loss.jsonl"), _losses(dp_run / "rank_1" / "loss.jsonl")
    assert all(a != b for a, b in zip(rank0, rank1)), (rank0, rank1)
    tokens = json.loads((dp_run / "loss.jsonl").read_text().splitlines()[1])
    assert tokens["tokens_per_s"] == pytest.approx(2 * 2 * 128 / tokens["step_s"], rel=0.05, abs=1.0)


def test_lora_weights_identical_on_both_ranks(dp_run):
    import mindspore as ms

    rank0 = ms.load_checkpoint(str(dp_run / "lora.ckpt"))
    rank1 = ms.load_checkpoint(str(dp_run / "rank_1" / "lora.ckpt"))
    names = [k for k in rank0 if "mindpet_delta" in k]
    assert len(names) == 8 and sorted(names) == sorted(k for k in rank1 if "mindpet_delta" in k)
    for name in names:
        np.testing.assert_array_equal(rank0[name].asnumpy(), rank1[name].asnumpy(), err_msg=name)
    assert np.abs(rank0["model.layers.1.attention.wv.mindpet_delta_lora_b"].asnumpy()).max() > 0  # trained


def test_merge_per_rank_checkpoints(dp_run, tmp_path):
    import mindspore as ms

    from research.llama3.checkpoint.merge_ranks import main, newest_per_rank

    src = dp_run / "output" / "checkpoint_trainable"
    assert list(newest_per_rank(str(src))) == [0, 1]
    assert main(["--checkpoint_dir", str(src), "--output", str(tmp_path / "merged.ckpt")]) == 0
    merged, rank0 = ms.load_checkpoint(str(tmp_path / "merged.ckpt")), ms.load_checkpoint(str(dp_run / "lora.ckpt"))
    for name in (k for k in rank0 if "mindpet_delta" in k):
        np.testing.assert_array_equal(merged[name].asnumpy(), rank0[name].asnumpy())

    # ranks that diverged are refused, naming the tensor
    bad = tmp_path / "diverged"
    shutil.copytree(src, bad)
    path = Path(newest_per_rank(str(bad))[1])
    params = ms.load_checkpoint(str(path))
    name = "model.layers.0.attention.wq.mindpet_delta_lora_a"
    params[name] = ms.Parameter(ms.Tensor(params[name].asnumpy() + 1e-3), name=name)
    path.chmod(0o644)
    ms.save_checkpoint([{"name": k, "data": v} for k, v in params.items()], str(path))
    with pytest.raises(ValueError, match=f"{name} differs from rank 0 by 0.001"):
        main(["--checkpoint_dir", str(bad), "--output", str(tmp_path / "never.ckpt")])
    assert not (tmp_path / "never.ckpt").exists()
