"""Contest, GSM8K and CMATH-style files through python -m eval.math (predictions mode), real data."""
import json

import pytest

from eval import math as math_cli
from eval.math_items import normalize_item, read_math_items

pytestmark = pytest.mark.unit

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def _preds(path, items, text):
    path.write_text("".join(json.dumps({"id": it["id"], "generation": text(it)}, ensure_ascii=False) + "\n"
                            for it in items), encoding="utf-8")
    return str(path)


def test_contest_sample_reference_solutions_score_100(shared_data, tmp_path, capsys):
    path = shared_data / "ascend2024_math/sample_dev.jsonl"
    items = read_math_items(path, limit=200)
    assert items[0]["answer"] == "210562442992.2269624224" and items[0]["category"] == "power"
    assert items[0]["id"] == 1 and len({it["category"] for it in items}) > 5
    preds = _preds(tmp_path / "p.jsonl", items, lambda it: "解：" + it["solution"])
    out = tmp_path / "out"
    assert math_cli.main(["--items", str(path), "--limit", "200", "--predictions", preds,
                          "--rule", "exact", "--output_dir", str(out),
                          "--config", str(ROOT / "configs/tiny/finetune_lora_cpu.yaml")]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"] == {"total": 200, "correct": 200, "accuracy": 1.0}
    # The run's own base size (tiny YAML) rather than Llama3-8B's; no --lora_checkpoint means the base
    # model was graded, which trains nothing (the score report.md shows for "before").
    from research.llama3.train.param_count import lora_param_counts
    from eval.model_args import read_model_config
    counts = lora_param_counts(read_model_config(str(ROOT / "configs/tiny/finetune_lora_cpu.yaml")))
    assert metrics["trainable"] == 0 and metrics["base_params"] == counts["base"]
    assert metrics["contest_score"] == pytest.approx(1.0)
    assert (out / "accuracy_by_category.png").stat().st_size > 1000
    assert "contest score:" in capsys.readouterr().out


def test_gsm8k_test_file(shared_data, tmp_path):
    path = shared_data / "gsm8k/test.jsonl"
    items = read_math_items(path, limit=100)
    assert items[0]["answer"] == "18" and items[0]["category"] == "gsm8k"
    # Right for even lines, off by one for odd ones, written with thousands separators.
    preds = _preds(tmp_path / "p.jsonl", items,
                   lambda it: f"The answer is {int(it['answer']) + it['id'] % 2:,}.")
    out = tmp_path / "out"
    assert math_cli.main(["--items", str(path), "--limit", "100", "--predictions", preds,
                          "--output_dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["correct"] == 50 and metrics["categories"]["gsm8k"]["total"] == 100


def test_cmath_and_bad_rows():
    item = normalize_item({"id": "7", "grade": "3", "question": "小明有3个苹果……", "golden": "5/6"}, "f:1")
    assert item["problem"].startswith("小明") and item["answer"] == "5/6" and item["category"] == "3"
    with pytest.raises(ValueError, match="f:2: unknown item format"):
        normalize_item({"text": "x"}, "f:2")
    with pytest.raises(ValueError, match="f:3: no reference answer"):
        normalize_item({"question": "q", "answer": "no final line"}, "f:3")
