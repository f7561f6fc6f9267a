"""Bagging at smoke size: 3 LoRA adapters of the tiny random Llama (configs/tiny), each trained by
MindFormers on its own 80% bag of generated logic conversations, and eval.logic voting across them."""
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from eval.files import read_jsonl
from preprocess import augment_logic
from preprocess.bagging import main as bagging
from preprocess.pipeline import run as preprocess

pytestmark = pytest.mark.integration

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny" / "finetune_lora_cpu.yaml"


@pytest.fixture(scope="module")
def bagged_run(tmp_path_factory, python_cli, tiny_train_data):
    """A run directory with data/ (preprocessed verified puzzles), bags/bag_0{0,1,2}/ each a trained
    run directory (train.mindrecord, loss.jsonl, lora.ckpt), and the shared random base.ckpt."""
    base_work, env = tiny_train_data
    run = tmp_path_factory.mktemp("bagged")
    # Chinese puzzles run to ~400 SmolLM2 tokens: the tiny YAML with room for them.
    text = TINY.read_text(encoding="utf-8")
    assert "seq_length: 128" in text
    yaml_path = run / "tiny_seq512.yaml"
    yaml_path.write_text(text.replace("seq_length: 128", "seq_length: 512"), encoding="utf-8")
    assert augment_logic.main(["--n", "12", "--seed", "0", "--output", str(run / "aug")]) == 0
    preprocess([str(run / "aug" / "augmented.jsonl")], run / "data", eval_size=4, seed=0, progress=False)
    assert bagging(["--input", str(run / "data" / "conversations.json"), "--n", "3", "--fraction", "0.8",
                    "--seed", "0", "--output_dir", str(run / "bags")]) == 0
    for k in range(3):
        bag = run / "bags" / f"bag_{k:02d}"
        python_cli(["-m", "research.llama3.records.mindrecord", "--dataset_type", "qa",
                    "--input_glob", bag / "conversations.json", "--config", yaml_path, "--seq_length", "512",
                    "--output_file", bag / "train.mindrecord"], env)
        python_cli(["-m", "research.llama3.train.finetune", "--config", yaml_path,
                    "--train_dataset", bag / "train.mindrecord", "--load_checkpoint", base_work / "base.ckpt",
                    "--output_dir", bag / "output", "--run_dir", bag,
                    "--stop_step", "2", "--seed", str(k)], env)
    return run, yaml_path, base_work / "base.ckpt"


def test_each_bag_is_a_normal_run_with_its_own_adapter(bagged_run):
    import mindspore as ms

    run, _, _ = bagged_run
    n_conv = len(json.loads((run / "data" / "conversations.json").read_text(encoding="utf-8")))
    weights = []
    for k in range(3):
        bag = run / "bags" / f"bag_{k:02d}"
        meta = json.loads((bag / "bag.json").read_text(encoding="utf-8"))
        assert meta["of"] == n_conv and meta["conversations"] < n_conv
        assert [json.loads(x)["step"] for x in (bag / "loss.jsonl").read_text().splitlines()] == [1, 2]
        assert (bag / "config.yaml").is_file() and (bag / "params.json").is_file()
        weights.append(ms.load_checkpoint(str(bag / "lora.ckpt"))[
            "model.layers.0.attention.wq.mindpet_delta_lora_b"].asnumpy())
    assert all(np.abs(w).max() > 0 for w in weights)
    assert not np.allclose(weights[0], weights[1]) and not np.allclose(weights[1], weights[2])


def test_eval_logic_votes_across_the_three_adapters(bagged_run, tmp_path):
    from eval import logic as logic_cli

    run, yaml_path, base = bagged_run
    adapters = [str(run / "bags" / f"bag_{k:02d}" / "lora.ckpt") for k in range(3)]
    out = tmp_path / "eval"
    assert logic_cli.main(["--items", str(run / "data" / "eval.jsonl"), "--config", str(yaml_path),
                           "--load_checkpoint", str(base), "--lora_checkpoint", *adapters, "--device", "cpu",
                           "--num_samples", "1", "--second_round", "0", "--max_new_tokens", "4",
                           "--output_dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["adapters"] == adapters and list(m["per_adapter"]) == adapters
    assert m["questions"] == 4 and m["samples"] == 3 * 4
    samples = read_jsonl(out / "samples.jsonl")
    assert Counter(s["adapter"] for s in samples) == {a: 4 for a in adapters}
    for row in read_jsonl(out / "predictions.jsonl"):
        letters = [s["letter"] for s in samples if s["key"] == row["key"]]
        assert row["votes"] == dict(Counter(x for x in letters if x is not None))  # one pooled vote
        assert row["per_adapter"] == {s["adapter"]: s["letter"] for s in samples if s["key"] == row["key"]}
    assert 0 < m["chance"]["questions"] <= 0.5
