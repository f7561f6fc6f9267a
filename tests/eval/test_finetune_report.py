"""The run report of a real (tiny) LoRA run: loss CSV and PNG, throughput, peak memory, parameter counts."""
import csv
import json
import shutil

import pytest

pytestmark = pytest.mark.integration


def test_report_of_a_training_run(tiny_lora_run, tmp_path):
    from eval import run_report

    run = tmp_path / "run"
    shutil.copytree(tiny_lora_run, run, ignore=shutil.ignore_patterns("output"))
    assert run_report.main(["--run_dir", str(run), "--wall_s", "12.5"]) == 0

    rows = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]
    with open(run / "loss.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["step"]) for r in table] == [r["step"] for r in rows] == list(range(1, 13))
    assert [float(r["loss"]) for r in table] == pytest.approx([r["loss"] for r in rows])
    assert {"tokens_per_s", "peak_host_mb", "lr", "global_norm"} <= set(table[0])
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    report = (run / "report.md").read_text()
    params = json.loads((run / "params.json").read_text())
    peak = max(r["peak_host_mb"] for r in rows)
    for fact in ("| steps | 12 |", f"| trainable parameters | {params['trainable']} |",
                 "| median throughput (tokens/s, padded) |", f"| peak host memory (MB) | {peak:.6g} |", "loss.csv"):
        assert fact in report, fact
