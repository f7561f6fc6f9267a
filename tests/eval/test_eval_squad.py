"""eval.squad and python -m eval.base on the real SQuAD (partial dev) and CMRC2018 files."""
import json

import pytest

from eval import base as base_cli
from eval.squad import (MindFormersEmF1, first_line, read_first_questions, render_prompt, retention,
                        squad_f1, squad_scores)
from preprocess.cli import run_main

pytestmark = pytest.mark.unit


def test_first_question_per_paragraph(shared_data):
    squad = read_first_questions(shared_data / "squad_v1.1_partial/dev-v1.1.json")
    doc = json.loads((shared_data / "squad_v1.1_partial/dev-v1.1.json").read_text(encoding="utf-8"))
    assert len(squad) == sum(len(a["paragraphs"]) for a in doc["data"]) == 913
    first = doc["data"][0]["paragraphs"][0]["qas"][0]
    assert squad[0]["id"] == first["id"] and squad[0]["question"] == first["question"]
    assert squad[0]["label"] == first["answers"][0]["text"] == "Denver Broncos"
    second = doc["data"][0]["paragraphs"][1]["qas"][0]
    assert squad[1]["question"] == second["question"]  # the 2nd paragraph's 1st question, not qas[1]
    prompt = render_prompt(squad[0])
    assert prompt.startswith("Read the passage and answer the question below.\n\n### Instruction:\n")
    assert prompt.endswith(f"\n\n### Input:\n{first['question']}\n\n### Response:")
    cmrc = read_first_questions(shared_data / "cmrc2018/cmrc2018_dev.json", limit=5)
    assert len(cmrc) == 5 and cmrc[0]["label"] == "光荣和ω-force"


def test_official_squad_metric():
    assert squad_f1("the Denver Broncos!", "Denver Broncos") == 1.0
    assert squad_f1("Broncos of Denver", "Denver Broncos") == pytest.approx(0.8)  # p 2/3, r 1
    assert squad_f1("Carolina", "Denver Broncos") == 0.0
    assert squad_scores("Denver", ["Denver Broncos", "Denver"]) == {"exact_match": 1, "f1": 1.0}


def test_mindformers_metric_semantics():
    mf = MindFormersEmF1()
    # Values from EmF1Metric's own docstring: "郑州市。" matches "郑州市", "郑州" does not.
    assert mf("郑州市。", "郑州市")["Em"] == 1 and mf("郑州", "郑州市")["Em"] == 0
    assert mf("Hello world。", "Hello world") == {"Em": 1, "F1": 1.0}
    assert mf("I love Beijing, because it's beautiful", "I love Beijing.")["F1"] == pytest.approx(0.5)
    # Character segments for CJK: "郑州" vs "郑州市" → lcs 2, p 1, r 2/3.
    assert mf("郑州", "郑州市")["F1"] == pytest.approx(0.8)
    assert first_line("  Denver Broncos\nThe team won.") == "Denver Broncos"


def test_retention_rule_with_contest_numbers():
    base = {"mindformers": {"F1": 59.87, "Em": 44.17}, "squad": {"f1": 70.0, "exact_match": 50.0}}
    run = {"mindformers": {"F1": 54.0, "Em": 39.0}, "squad": {"f1": 63.0, "exact_match": 45.0}}
    checks = retention(run, base)
    assert checks["mindformers.F1"]["threshold"] == pytest.approx(53.883)
    assert checks["mindformers.F1"]["pass"] and not checks["mindformers.Em"]["pass"]
    assert checks["squad.f1"]["pass"] and checks["squad.exact_match"]["pass"]


def test_base_cli_predictions_mode_and_90_percent_rule(shared_data, tmp_path, capsys):
    squad = shared_data / "cmrc2018/cmrc2018_dev.json"
    items = read_first_questions(squad, limit=20)
    preds = tmp_path / "preds.jsonl"
    rows = [{"id": it["id"], "generation": (it["label"] if i < 10 else "不知道") + "\n解释……"}
            for i, it in enumerate(items)]
    preds.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    base_dir, run_dir = tmp_path / "base", tmp_path / "run"
    assert base_cli.main(["--squad", str(squad), "--predictions", str(preds), "--limit", "20",
                          "--output_dir", str(base_dir)]) == 0
    base = json.loads((base_dir / "metrics.json").read_text(encoding="utf-8"))
    assert base["count"] == 20 and base["mindformers"]["Em"] == pytest.approx(50.0)
    assert base["squad"]["exact_match"] == pytest.approx(50.0)
    # Half of the right answers are lost: every metric drops to 50% of the base, and fails.
    rows = rows[:5] + [{"id": r["id"], "generation": "不知道"} for r in rows[5:]]
    preds.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    capsys.readouterr()
    assert base_cli.main(["--squad", str(squad), "--predictions", str(preds), "--limit", "20",
                          "--baseline", str(base_dir / "metrics.json"), "--output_dir", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    assert "90% rule: FAIL" in printed and "| mindformers.Em | 25.00 | 50.00 | 45.00 | FAIL |" in printed
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["pass"] is False and (run_dir / "scores.png").stat().st_size > 1000
    assert "**FAIL**" in (run_dir / "report.md").read_text(encoding="utf-8")
    first = json.loads((run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["answer"] == items[0]["label"] and first["mindformers"] == {"Em": 1, "F1": 1.0}


def test_base_cli_model_mode(shared_data, tmp_path, tiny_hf_model_dir):
    """Greedy generation through a small transformers model directory, then grading."""
    model_dir = tiny_hf_model_dir
    out = tmp_path / "out"
    assert base_cli.main(["--squad", str(shared_data / "squad_v1.1_partial/dev-v1.1.json"), "--limit", "2",
                          "--hf_model_dir", str(model_dir), "--max_new_tokens", "3", "--device", "cpu",
                          "--output_dir", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 and all(isinstance(r["generation"], str) for r in rows)
    assert all(r["answer"] == first_line(r["generation"]) for r in rows)


def test_base_cli_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "1.1"}', encoding="utf-8")
    preds = tmp_path / "p.jsonl"
    preds.write_text("", encoding="utf-8")
    assert run_main(base_cli.main, ["--squad", str(bad), "--predictions", str(preds), "--output_dir", str(tmp_path)]) == 2
    assert "not SQuAD v1.1 JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        base_cli.main(["--help"])
    assert exc.value.code == 0
    assert "--baseline" in capsys.readouterr().out
