"""End to end: `bash scripts/finetune.sh --smoke` runs every stage and leaves a readable run directory,
described by its run.json manifest."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from research.rundir.layout import RunLayout
from research.rundir.manifest import Manifest, file_sha256

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_smoke_chain(tmp_path):
    run_id = f"pytest-smoke-{os.getpid()}"
    run = ROOT / "logs" / run_id
    env = {**os.environ, "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")}
    try:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "finetune.sh"), "--smoke", "--target_style", "cot",
                               "--run_id", run_id],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

        manifest = Manifest.require(RunLayout(run))
        assert {name: rec["status"] for name, rec in manifest.stages.items()} == dict.fromkeys(
            ("data", "preprocess", "mindrecord", "base", "train", "eval_math_base", "eval_math_lora", "report"), "done")
        settings = manifest.settings
        assert (settings["template"], settings["seq_length"], settings["stop_step"], settings["smoke"]) == \
            ("vicuna_nosys", 128, 8, True)
        [entry] = manifest.data["data"]
        assert entry["sha256"] == file_sha256(run / "data" / "generated.jsonl")
        assert manifest.output("train") == run / "lora.ckpt"

        data = json.loads((run / "data" / "report.json").read_text())
        assert data["read"] == data["kept"] + data["duplicates"] + data["rejected"] == 400
        assert data["eval"] == 20 and data["train"] + data["eval"] == data["kept"]
        eval_ids = {json.loads(line)["id"] for line in (run / "data" / "eval.jsonl").read_text().splitlines()}
        train_ids = {c["id"] for c in json.loads((run / "data" / "conversations.json").read_text())}
        assert eval_ids and not eval_ids & train_ids  # held-out items are never trained on

        records = json.loads((run / "train.mindrecord.report.json").read_text())
        conversations = json.loads((run / "data" / "conversations.json").read_text())
        # packed: several samples a record, each with its own mask (tests/test_packing_isolation.py)
        assert settings["packing"] and records["packing"]
        assert records["samples"] == len(conversations) - len(records["dropped"]) > records["records"]
        assert records["template"] == settings["template"]

        losses = [json.loads(line)["loss"] for line in (run / "loss.jsonl").read_text().splitlines()]
        assert len(losses) == 8
        assert (run / "lora.ckpt").stat().st_size > 0 and (run / "loss.png").stat().st_size > 1000

        for which in ("math_base", "math_lora"):
            metrics = json.loads((run / "eval" / which / "metrics.json").read_text())
            assert metrics["overall"]["total"] == 20 and metrics["source"]["template"] == settings["template"]
        assert json.loads((run / "eval" / "math_lora" / "metrics.json").read_text())["source"]["lora_checkpoint"] \
            .endswith("lora.ckpt")

        report = (run / "report.md").read_text()
        assert f"| truncated | {len(records['truncated'])} |" in report  # counted, the list stays in the JSON
        for heading in ("## Run settings", "| chat template | vicuna_nosys |", "## Stages", "| train | done |",
                        "## Data", "## MindRecord", "## Training", "![loss](loss.png)",
                        "| category | n | accuracy before | accuracy after |", "**overall**"):
            assert heading in report
        assert "(missing" not in report
        assert "7/8 evaluate math (after fine-tuning, transformers)" in proc.stdout
        assert "train: 100%" in proc.stderr and "8/8" in proc.stderr  # the progress bar over steps
    finally:
        subprocess.run(["rm", "-rf", str(run)], check=False)


@pytest.mark.parametrize("style, options, described", [
    ("pot", ["--target_style", "pot"], "pot (expressions, eval --mode pot)"),
    ("pot_cot", [], "pot_cot (expression, then steps CoT; eval --mode pot)"),  # the default
])
def test_smoke_chain_pot_mode(tmp_path, style, options, described):
    """`--smoke --target_style pot` and the default pot_cot: expression targets trained (pot_cot: with
    the steps after them, the expression alone where that is over seq_length 128), both evals in
    eval.math --mode pot (the base prompted with the PoT worked examples), and report.md with
    tool-free and tool-assisted columns."""
    run_id = f"pytest-smoke-{style}-{os.getpid()}"
    run = ROOT / "logs" / run_id
    env = {**os.environ, "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")}
    try:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "finetune.sh"), "--smoke", *options,
                               "--eval_limit", "12", "--run_id", run_id],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        settings = Manifest.require(RunLayout(run)).settings
        assert (settings["target_style"], settings["eval_limit"]) == (style, 12)

        conversations = json.loads((run / "data" / "conversations.json").read_text())
        targets = [c["conversations"][-1]["value"] for c in conversations]
        assert sum("算式：" in t for t in targets) > 0.8 * len(targets)  # the computational categories
        records = json.loads((run / "train.mindrecord.report.json").read_text())
        fallbacks = sum("fallback_conversations" in c for c in conversations)
        assert fallbacks == (0 if style == "pot" else sum("\n算式：" in t for t in targets))
        # --smoke truncates what does not fit seq_length 128, except where a fallback fits (a few long
        # prompts, e.g. means of ten numbers, do not fit even with the expression alone)
        assert len(records["shortened"]) <= fallbacks and (style == "pot" or records["shortened"])
        with_fallback = {c["id"] for c in conversations if "fallback_conversations" in c}
        assert len(with_fallback & {e["id"] for e in records["truncated"]}) < len(records["shortened"]) or style == "pot"

        base, lora = (json.loads((run / "eval" / which / "metrics.json").read_text()) for which in ("math_base", "math_lora"))
        for metrics in (base, lora):
            assert metrics["mode"] == "pot" and metrics["overall"]["total"] == 12
            assert metrics["tool_assisted"]["overall"]["total"] == 12
        assert base["source"]["fewshot"].endswith("configs/eval/pot_fewshot.jsonl")
        assert base["source"]["template"] == "none"
        assert lora["source"]["fewshot"] is None and lora["source"]["template"] == "vicuna_nosys"

        report = (run / "report.md").read_text()
        for heading in (f"| training targets | {described} |",
                        "| category | n | tool-free before | tool-assisted (PoT) before | tool-free after "
                        "| tool-assisted (PoT) after |", "PoT expressions that could not be used", "**overall**"):
            assert heading in report
        assert "(missing" not in report
    finally:
        subprocess.run(["rm", "-rf", str(run)], check=False)
