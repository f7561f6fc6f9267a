"""python -m eval.math in predictions mode: outputs, table, errors, --help."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval import math as math_cli
from preprocess.cli import run_main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ITEMS = [
    {"id": "a", "category": "mean", "problem": "平均值？", "answer": "54.75"},
    {"id": "b", "category": "mean", "problem": "平均值？", "answer": "61"},
    {"id": "c", "category": "power", "problem": "183.94^5", "answer": "210562442992.2269624224"},
    {"id": "d", "category": "power", "problem": "2^3", "answer": "8"},
]
PREDS = [
    {"id": "a", "generation": "平均值为 54.75"},
    {"id": "b", "generation": "平均值为 60.5"},
    {"id": "c", "generation": "183.94^5 = 210562442992.22696"},
    {"id": "d", "generation": "2^3 = 8"},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def files(tmp_path):
    return write_jsonl(tmp_path / "items.jsonl", ITEMS), write_jsonl(tmp_path / "preds.jsonl", PREDS)


def test_predictions_mode_writes_outputs_and_prints_table(files, tmp_path, capsys):
    items, preds = files
    out = tmp_path / "out"
    assert math_cli.main(["--items", items, "--predictions", preds, "--output_dir", str(out),
                          "--trainable", "3407872"]) == 0
    printed = capsys.readouterr().out
    assert "| mean | 2 | 50.00% (1) |" in printed
    assert "| power | 2 | 50.00% (1) |" in printed  # exact: 17 of the reference's 22 digits fail
    assert "| **overall** | 4 | 50.00% (2) |" in printed
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"] == {"total": 4, "correct": 2, "accuracy": 0.5}
    assert metrics["rule"] == "exact" and metrics["mode"] == "cot" and metrics["missing"] == 0
    assert "tool_assisted" not in metrics
    assert metrics["contest_score"] == pytest.approx((1 - 3407872 / 8.03e9) * 0.3 + 0.5 * 0.7)
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["extracted"], r["correct"]) for r in rows] == [
        ("a", "54.75", True), ("b", "60.5", False), ("c", "210562442992.22696", False), ("d", "8", True)]
    assert sorted(os.listdir(out)) == ["accuracy_by_category.png", "metrics.json", "predictions.jsonl",
                                       "rejected_predictions.jsonl", "report.md"]  # no temp files left
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| **overall** | 4 | 50.00% (2) |" in report and "rule `exact`" in report
    assert "(1 - 3,407,872 / 8,030,000,000) x 0.3 + accuracy x 0.7 = **0.6499**" in report


def test_rescoring_own_output_with_limit_rule_and_baseline(files, tmp_path, capsys):
    items, preds = files
    first = tmp_path / "first"
    math_cli.main(["--items", items, "--predictions", preds, "--output_dir", str(first)])
    capsys.readouterr()
    second = tmp_path / "second"
    assert math_cli.main(["--items", items, "--predictions", str(first / "predictions.jsonl"),
                          "--output_dir", str(second), "--limit", "3", "--rule", "printed",
                          "--baseline", str(first / "metrics.json")]) == 0
    printed = capsys.readouterr().out
    assert "| category | n | accuracy before | accuracy after |" in printed
    # printed: ...22696 is the reference rounded at its own last digit, with 17 >= 5 digits
    assert "| power | 2 / 1 | 50.00% (1) | 100.00% (1) |" in printed
    assert json.loads((second / "metrics.json").read_text())["overall"]["total"] == 3


def test_bad_input_reports_error(tmp_path, files, capsys):
    items, _ = files
    assert run_main(math_cli.main, ["--items", str(tmp_path / "none.jsonl"), "--predictions", items,
                          "--output_dir", str(tmp_path / "o")]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        math_cli.main(["--items", items, "--predictions", items, "--rule", "close"])
    with pytest.raises(SystemExit):
        math_cli.main(["--items", items])  # neither predictions nor a model


def test_contest_score_of_the_base_model_counts_no_trainable_parameters(files, tmp_path, capsys):
    from eval.math_accuracy import contest_score
    from eval.model_args import read_model_config
    from research.llama3.train.param_count import lora_param_counts

    items, preds = files
    yaml = str(ROOT / "configs/smollm2_135m/finetune_lora_cpu.yaml")
    counts = lora_param_counts(read_model_config(yaml))
    assert counts["trainable"] > 0  # the YAML describes a LoRA; the base model has none of it
    for adapter, trainable in (([], 0), (["--lora_checkpoint", str(tmp_path / "lora.ckpt")], counts["trainable"])):
        out = tmp_path / f"out{trainable}"
        assert math_cli.main(["--items", items, "--predictions", preds, "--output_dir", str(out),
                              "--config", yaml, *adapter]) == 0
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        expected = contest_score(0.5, trainable, counts["base"])  # as eval.run_report computes before/after
        assert metrics["trainable"] == trainable and metrics["contest_score"] == expected
        assert f"contest score: {expected:.4f}" in capsys.readouterr().out
    assert f"{contest_score(0.5, 0, counts['base']):.4f}" == "0.6500"


def test_gbk_items_name_file_and_line(tmp_path, files, capsys):
    _, preds = files
    gbk = tmp_path / "gbk.jsonl"
    gbk.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ITEMS).encode("gb18030"))
    assert run_main(math_cli.main, ["--items", str(gbk), "--predictions", preds, "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"error: {gbk}:1: not UTF-8 (byte 0xbe at column 47)" in err and "iconv -f GB18030 -t UTF-8" in err


def test_help_documents_every_option():
    proc = subprocess.run([sys.executable, "-m", "eval.math", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for option in ("--items", "--predictions", "--hf_model_dir", "--output_dir", "--limit",
                   "--rule", "--mode", "--max_new_tokens", "--batch_size", "--template"):
        assert option in proc.stdout
