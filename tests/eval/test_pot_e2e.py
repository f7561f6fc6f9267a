"""Smoke-size end to end of the program-of-thought mode on real contest items and the embedded SmolLM2:
preprocess with ``target_style: pot`` -> MindRecord with the YAML's tokenizer -> ``eval.math --mode
pot`` on a predictions file and on a real generation."""
import json
from pathlib import Path

import numpy as np
import pytest

from eval import math as math_cli
from eval.compare import is_correct
from preprocess.answer.extract import extract_answer
from preprocess.answer.pot import execute
from preprocess.config import PreprocessConfig
from preprocess.budget import IGNORE_INDEX
from research.llama3.records.mindrecord import main as mindrecord_main
from preprocess.pipeline import run

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2_YAML = str(ROOT / "configs/smollm2_135m/finetune_lora_cpu.yaml")
FEWSHOT = str(ROOT / "configs/eval/pot_fewshot.jsonl")


@pytest.fixture(scope="module")
def prepared(shared_data, tmp_path_factory):
    """16 real non-English sample items, preprocessed with PoT targets, 6 held out."""
    src = shared_data / "ascend2024_math/sample_dev.jsonl"
    if not src.is_file():
        pytest.skip(f"real data file missing: {src}")
    lines = [line for line in src.read_text(encoding="utf-8").splitlines() if "\\boxed" not in line][:16]
    work = tmp_path_factory.mktemp("pot_e2e")
    (work / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run([str(work / "in.jsonl")], work / "data", eval_size=6, progress=False,
                 config=PreprocessConfig(target_style="pot"))
    assert report["verified"] == 16 and report["eval"] == 6 and report["conversations"] == 10
    return work


def test_pot_targets_reach_the_mindrecord(prepared):
    from research.llama3.tokenizers.tokenizer import tokenizer_from_config
    import mindspore.dataset as ds

    out = prepared / "train.mindrecord"
    assert mindrecord_main(["--input_glob", str(prepared / "data/conversations.json"), "--output_file", str(out),
                            "--config", SMOLLM2_YAML, "--seq_length", "256"]) == 0
    conv = json.loads((prepared / "data/conversations.json").read_text(encoding="utf-8"))
    tok = tokenizer_from_config(SMOLLM2_YAML)
    rows = list(ds.MindDataset(str(out), columns_list=["labels"], shuffle=False).create_dict_iterator(output_numpy=True))
    assert len(rows) == len(conv) == 10
    for record, c in zip(rows, conv):
        target = c["conversations"][1]["value"]
        assert "\n算式：" in target
        trained = [int(i) for i in np.asarray(record["labels"]) if i != IGNORE_INDEX]
        assert trained[-1] == tok.eos_id  # the whole target is trained on, nothing truncated
        assert tok.hf.decode(trained[:-1]).strip() == target
        assert execute(target)[1] == "ok"


def test_eval_pot_on_its_own_targets_is_perfect(prepared, tmp_path):
    items = prepared / "data/eval.jsonl"
    held = [json.loads(line) for line in items.read_text(encoding="utf-8").splitlines()]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": it["id"], "generation": it["cot"]}, ensure_ascii=False) + "\n"
                             for it in held), encoding="utf-8")
    out = tmp_path / "out"
    assert math_cli.main(["--items", str(items), "--predictions", str(preds), "--mode", "pot",
                          "--output_dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["tool_assisted"]["overall"] == {"total": 6, "correct": 6, "accuracy": 1.0}
    assert metrics["tool_assisted"]["failures"] == {"no_expression": 0, "parse_failed": 0, "eval_failed": 0}
    # The expression's last number is an operand, never the answer: tool-free stays at its own count.
    assert metrics["overall"]["correct"] == sum(
        is_correct(extract_answer(it["cot"]), it["answer"], "exact", it["category"]) for it in held)


def test_eval_pot_on_a_real_generation(prepared, conv_smollm2_hf_reference, conv_smollm2_tokenizer, tmp_path):
    model_dir = tmp_path / "smollm2"
    conv_smollm2_hf_reference.save_pretrained(model_dir)
    conv_smollm2_tokenizer.save_pretrained(model_dir)
    out = tmp_path / "gen"
    items = prepared / "data/eval.jsonl"
    assert math_cli.main(["--items", str(items), "--hf_model_dir", str(model_dir), "--mode", "pot",
                          "--fewshot", FEWSHOT, "--template", "none", "--limit", "3", "--max_new_tokens", "32",
                          "--batch_size", "3", "--device", "cpu", "--output_dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and all(r["generation"].strip() for r in rows)
    assert not any("\n\n" in r["generation"] for r in rows)  # cut where a next worked example would start
    for r in rows:  # every figure follows from the generation
        value, status, _ = execute(r["generation"])
        assert (r["executed"], r["pot_status"]) == (value, status)
        assert r["tool_correct"] == is_correct(value, r["answer"], "exact", r["category"])
        assert r["correct"] == is_correct(extract_answer(r["generation"]), r["answer"], "exact", r["category"])
    tool = metrics["tool_assisted"]
    assert tool["overall"]["correct"] == sum(r["tool_correct"] for r in rows)
    assert sum(tool["failures"].values()) == sum(r["pot_status"] != "ok" for r in rows)
    assert metrics["source"]["fewshot"] == FEWSHOT
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| category | n | tool-free | tool-assisted (PoT) |" in report and "| **total** | 3 |" in report


def test_pot_cot_targets_score_in_both_columns(prepared, tmp_path):
    """pot_cot targets of the same real items: the expression executes to the answer (tool-assisted)
    and the steps after it end with the answer (tool-free), both under ``exact``."""
    run([str(prepared / "in.jsonl")], tmp_path / "data", eval_size=6, progress=False,
        config=PreprocessConfig(target_style="pot_cot"))
    items = tmp_path / "data/eval.jsonl"
    held = [json.loads(line) for line in items.read_text(encoding="utf-8").splitlines()]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": it["id"], "generation": it["cot"]}, ensure_ascii=False) + "\n"
                             for it in held), encoding="utf-8")
    assert math_cli.main(["--items", str(items), "--predictions", str(preds), "--mode", "pot",
                          "--output_dir", str(tmp_path / "out")]) == 0
    metrics = json.loads((tmp_path / "out/metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"] == metrics["tool_assisted"]["overall"] == {"total": 6, "correct": 6, "accuracy": 1.0}
    assert all(it["cot"].startswith(it["fallback"] + "\n") for it in held)
