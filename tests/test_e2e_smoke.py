"""End to end: `bash scripts/finetune.sh --smoke` runs every stage and leaves a readable run directory."""
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_chain(tmp_path):
    run_id = f"pytest-smoke-{os.getpid()}"
    run = ROOT / "logs" / run_id
    env = {**os.environ, "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")}
    try:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "finetune.sh"), "--smoke", "--run_id", run_id],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

        data = json.loads((run / "data" / "report.json").read_text())
        assert data["read"] == data["kept"] + data["duplicates"] + data["rejected"] == 400
        assert data["eval"] == 20 and data["train"] + data["eval"] == data["kept"]
        eval_ids = {json.loads(line)["id"] for line in (run / "data" / "eval.jsonl").read_text().splitlines()}
        train_ids = {c["id"] for c in json.loads((run / "data" / "conversations.json").read_text())}
        assert eval_ids and not eval_ids & train_ids  # held-out items are never trained on

        records = json.loads((run / "train.mindrecord.report.json").read_text())
        assert records["records"] == data["train"] - len(records["dropped"])

        losses = [json.loads(line)["loss"] for line in (run / "loss.jsonl").read_text().splitlines()]
        assert len(losses) == 8
        assert (run / "lora.ckpt").stat().st_size > 0 and (run / "loss.png").stat().st_size > 1000

        for which in ("before", "after"):
            metrics = json.loads((run / "eval" / which / "metrics.json").read_text())
            assert metrics["overall"]["total"] == 20
        assert json.loads((run / "eval" / "after" / "metrics.json").read_text())["source"]["lora_checkpoint"] \
            .endswith("lora.ckpt")

        report = (run / "report.md").read_text()
        assert f"| truncated | {len(records['truncated'])} |" in report  # counted, the list stays in the JSON
        for heading in ("## Data", "## MindRecord", "## Training", "![loss](loss.png)",
                        "| category | n | accuracy before | accuracy after |", "**overall**"):
            assert heading in report
        assert "(missing" not in report
        assert "7/7 evaluate math accuracy (after fine-tuning)" in proc.stdout
    finally:
        subprocess.run(["rm", "-rf", str(run)], check=False)
