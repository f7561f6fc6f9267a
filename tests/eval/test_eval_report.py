"""eval.report: loss plot and report.md."""
import json

import pytest

from eval.math_accuracy import format_table, score
from eval.report import plot_loss, read_loss_log, write_report

pytestmark = pytest.mark.unit


@pytest.fixture
def loss_log(tmp_path):
    path = tmp_path / "loss.jsonl"
    lines = [json.dumps({"step": s, "loss": 2.5 / (1 + s / 10), "lr": 1e-4}) for s in range(1, 31)]
    lines.insert(5, json.dumps({"step": 5, "eval_accuracy": 0.3}))  # not a loss line
    lines.insert(7, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_loss_log(loss_log):
    steps, losses = read_loss_log(loss_log)
    assert steps == list(range(1, 31))
    assert losses[0] == pytest.approx(2.5 / 1.1) and losses[-1] == pytest.approx(2.5 / 4)


def test_plot_loss_writes_png(loss_log, tmp_path):
    png = tmp_path / "plots" / "loss.png"
    assert plot_loss(loss_log, png) == str(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plot_loss_rejects_log_without_losses(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text('{"step": 1}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="no lines"):
        plot_loss(path, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_write_report_contains_sections_and_table(tmp_path):
    items = [{"id": 1, "category": "area", "answer": "5723"}, {"id": 2, "category": "mean", "answer": "61"}]
    before = score(items, [{"id": 1, "generation": "5700"}, {"id": 2, "generation": "61.0"}])
    after = score(items, [{"id": 1, "generation": "面积为 5723 平方厘米"}, {"id": 2, "generation": "61.0"}])
    table = format_table(before, after)
    path = write_report(tmp_path / "run", {
        "Run configuration": {"model": "llama3-8b", "lora_rank": 8, "learning_rate": 0.0001},
        "Data": {"train": {"raw": 809993, "dedup": 548942}, "eval": {"raw": 1000}},
        "Training": {"steps": 300, "first_loss": 2.2727272727, "last_loss": 0.625,
                     "wall_time_s": 3600.5, "tokens_per_s": 1234.5},
        "Evaluation": table,
        "Artefacts": ["run/loss.png", "run/metrics.json"],
    })
    assert path == str(tmp_path / "run" / "report.md")
    text = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# Run report\n\n## Run configuration\n\n| | |\n|---|---|\n| model | llama3-8b |")
    assert table in text
    assert "| area | 1 | 0.00% (0) | 100.00% (1) |" in text
    assert "| | raw | dedup |\n|---|---:|---:|\n| train | 809993 | 548942 |\n| eval | 1000 |  |" in text
    assert "| first_loss | 2.27273 |" in text and "| learning_rate | 0.0001 |" in text
    assert "- run/loss.png\n- run/metrics.json\n" in text
