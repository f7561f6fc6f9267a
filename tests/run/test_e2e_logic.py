"""End to end for logic: `bash scripts/finetune.sh --smoke --data <math + Tianchi-format puzzles> --bags 2`.
Verified generated puzzles (preprocess.augment_logic) and generated contest math in one input: auto
detection picks the seq512 tiny config, each grader evaluates its own held-out items (eval.math and
eval.logic), two bag adapters are trained as run directories of their own and vote "after", and the
report shows the logic section with before/after, chance and votes. A second identical command skips
every stage but the report; after a bag's adapter is lost, only that bag trains again."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from preprocess import augment_logic
from preprocess.synthesize import main as generate_math
from research.rundir.layout import RunLayout
from research.rundir.manifest import Manifest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

STAGES = ("data", "preprocess", "mindrecord", "base", "train", "bags", "bag_00", "bag_01",
          "eval_math_base", "eval_math_lora", "eval_logic_base", "eval_logic_lora", "report")


def _finetune(args, cwd, env):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "finetune.sh"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc.stdout


def test_logic_smoke_with_bags(tmp_path):
    assert augment_logic.main(["--n", "24", "--seed", "0", "--output", str(tmp_path / "aug")]) == 0
    assert generate_math(["--n", "40", "--seed", "0", "--output", str(tmp_path / "math.jsonl")]) == 0
    data = [str(tmp_path / "math.jsonl"), str(tmp_path / "aug" / "augmented.jsonl")]
    run = tmp_path / "run"
    env = {**os.environ, "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")}
    args = ["--smoke", "--data", *data, "--eval_size", "16", "--bags", "2", "--run_dir", str(run)]
    out = _finetune(args, tmp_path, env)
    assert "graded with eval.math" in out and "graded with eval.logic" in out

    manifest = Manifest.require(RunLayout(run))
    assert {name: rec["status"] for name, rec in manifest.stages.items()} == dict.fromkeys(STAGES, "done")
    s = manifest.settings
    assert (s["task"], s["logic_input"], s["seq_length"], s["bags"], s["logic_style"]) == ("auto", True, 512, 2, "plain")
    assert s["config"].endswith("configs/tiny/finetune_lora_cpu_seq512.yaml")

    report = json.loads((run / "data" / "report.json").read_text())
    n_logic = report["per_category"]["logic"]["eval"]
    assert 0 < n_logic < 16  # a mixed held-out split: math and logic items

    train_ids = {c["id"] for c in json.loads((run / "data" / "conversations.json").read_text())}
    for k in range(2):
        bag = run / "bags" / f"bag_{k:02d}"
        bag_manifest = Manifest.require(RunLayout(bag))
        assert bag_manifest.settings["seed"] == s["seed"] + k and bag_manifest.settings["bags"] == 0
        assert {n: r["status"] for n, r in bag_manifest.stages.items()} == {"mindrecord": "done", "train": "done"}
        bag_ids = [c["id"] for c in json.loads((bag / "conversations.json").read_text())]
        assert set(bag_ids) < train_ids
        # --smoke stops at step 8 unless one epoch of the bag's packed records (the YAML's epochs: 1,
        # batch_size 4) is shorter: MindFormers runs epochs x batches, stop_step only caps it.
        records = json.loads((bag / "train.mindrecord.report.json").read_text())["records"]
        steps = [json.loads(x)["step"] for x in (bag / "loss.jsonl").read_text().splitlines()]
        assert steps == list(range(1, min(8, records // 4) + 1)) and len(steps) >= 4
        assert (bag / "lora.ckpt").stat().st_size > 0

    math_before = json.loads((run / "eval" / "math_base" / "metrics.json").read_text())
    # eval.math skips the logic items
    assert (math_before["overall"]["total"], math_before["skipped_logic_items"]) == (16 - n_logic, n_logic)
    before, after = (json.loads((run / "eval" / f"logic_{m}" / "metrics.json").read_text()) for m in ("base", "lora"))
    for m in (before, after):
        assert m["questions"] == n_logic and m["skipped_other_categories"] == 16 - n_logic
        assert 0 < m["chance"]["questions"] < 1 and m["chance"] == before["chance"]
        # 3 votes a question and adapter on CPU, plus a second round for the undecided ones
        assert m["samples"] >= 3 * n_logic * len(m["adapters"])
    assert before["adapters"] == ["base"]
    assert after["adapters"] == [str(run / "bags" / f"bag_{k:02d}" / "lora.ckpt") for k in range(2)]
    assert set(after["per_adapter"]) == set(after["adapters"])

    text = (run / "report.md").read_text()
    section = text.split("## Logic accuracy")[1].split("\n## ")[0]
    assert f"{n_logic} held-out sub-questions" in section
    assert "| before fine-tuning |" in section and "**vote of 2 adapters**" in section
    assert f"| chance (1/options) | {100 * before['chance']['questions']:.2f}% |" in section
    assert "3 sample(s) per question and adapter" in section and "2 adapter(s) pooled" in section
    assert "## Math accuracy" in text

    again = _finetune(args, tmp_path, env)  # the same command: everything but the report is skipped
    assert again.count("skipped: done in an earlier attempt") == len(STAGES) - 1

    # A lost adapter: only that bag trains again (its MindRecord is kept), the other bag is untouched.
    finished = {name: rec["finished"] for name, rec in manifest.stages.items()}
    bag_finished = {k: {n: r["finished"] for n, r in Manifest.require(RunLayout(run / "bags" / f"bag_{k:02d}"))
                        .stages.items()} for k in range(2)}
    (run / "bags" / "bag_01" / "lora.ckpt").unlink()
    _finetune(args, tmp_path, env)
    stages = Manifest.require(RunLayout(run)).stages
    assert all(stages[n]["status"] == "done" for n in STAGES) and (run / "bags" / "bag_01" / "lora.ckpt").is_file()
    assert stages["bag_00"]["finished"] == finished["bag_00"] and stages["train"]["finished"] == finished["train"]
    assert stages["bag_01"]["finished"] != finished["bag_01"]
    bag1 = Manifest.require(RunLayout(run / "bags" / "bag_01")).stages
    assert bag1["mindrecord"]["finished"] == bag_finished[1]["mindrecord"]
    assert bag1["train"]["finished"] != bag_finished[1]["train"]
