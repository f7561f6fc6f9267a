"""eval.pot and ``python -m eval.math --mode pot`` on a predictions file."""
import json

import pytest

from eval import math as math_cli
from eval.pot import score_pot
from preprocess.answer.pot import execute

pytestmark = pytest.mark.unit

ITEMS = [
    {"id": "a", "category": "division", "problem": "计算 6122.87 / -6284.25 等于多少？",
     "answer": "-0.9743199268011298086486056411"},
    {"id": "b", "category": "linear_equation", "problem": "解方程 -39x + 20 = 0", "answer": "0.5128205128205128"},
    {"id": "c", "category": "power", "problem": "计算 -719.49 的 2 次方？", "answer": "517665.8601"},
    {"id": "d", "category": "power", "problem": "计算 977.17 的 2 次方？", "answer": "954861.2089"},
    {"id": "e", "category": "subtraction", "problem": "计算 9690.26 - 8922.32 等于多少？", "answer": "767.94"},
    {"id": "f", "category": "subtraction", "problem": "计算 -3828.45 - 756.08 等于多少？", "answer": "-4584.53"},
    {"id": "g", "category": "division", "problem": "计算 5 / 1 等于多少？", "answer": "5"},
]
PREDS = [
    {"id": "a", "generation": "被除数除以除数。\n算式：6122.87 / (-6284.25)"},       # ok, right
    {"id": "b", "generation": "解一元一次方程。\n算式：solve(-39*x + 20 = 0)"},      # 28 digits vs float ref
    {"id": "c", "generation": "算式：-719.49**2"},                                   # -(719.49**2): wrong
    {"id": "d", "generation": "977.17 的平方是 954861.2089\n算式：977.17 ** 2"},       # both right
    {"id": "e", "generation": "9690.26 - 8922.32 = 767.94"},                          # no expression
    {"id": "f", "generation": "算式：__import__('os').getcwd()"},                      # refused
    {"id": "g", "generation": "算式：1 / 0"},                                          # evaluation fails
]


def test_execute():
    assert execute("算式：1 + 2") == ("3", "ok", "1 + 2")
    assert execute("1 + 2 = 3") == (None, "no_expression", "")
    value, status, detail = execute("算式：a.b")
    assert (value, status) == (None, "parse_failed") and "Attribute" in detail
    assert execute("算式：1/0")[:2] == (None, "eval_failed")


def test_score_pot_counts_values_and_failures():
    result = score_pot(ITEMS, PREDS)
    by_id = {r["id"]: r for r in result["items"]}
    assert {i: (r["extracted"], r["correct"], r["pot_status"]) for i, r in by_id.items()} == {
        "a": ("-0.9743199268011298086486056411", True, "ok"),
        "b": ("0.5128205128205128205128205128", True, "ok"),
        "c": ("-517665.8601", False, "ok"),
        "d": ("954861.2089", True, "ok"),
        "e": (None, False, "no_expression"),
        "f": (None, False, "parse_failed"),
        "g": (None, False, "eval_failed"),
    }
    assert result["overall"] == {"total": 7, "correct": 3, "accuracy": 3 / 7}
    assert result["failures"] == {"no_expression": 1, "parse_failed": 1, "eval_failed": 1}
    assert result["failures_by_category"]["division"] == {"no_expression": 0, "parse_failed": 0, "eval_failed": 1}
    assert result["failures_by_category"]["subtraction"] == {"no_expression": 1, "parse_failed": 1,
                                                             "eval_failed": 0}


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_cli_pot_mode_reports_both_columns(tmp_path, capsys):
    items, preds = _write(tmp_path / "items.jsonl", ITEMS), _write(tmp_path / "preds.jsonl", PREDS)
    out = tmp_path / "pot"
    assert math_cli.main(["--items", items, "--predictions", preds, "--output_dir", str(out), "--mode", "pot"]) == 0
    printed = capsys.readouterr().out
    assert "| category | n | tool-free | tool-assisted (PoT) |" in printed
    # tool-free grades the last number written: only e states its answer last (d's last number is the 2)
    assert "| subtraction | 2 | 50.00% (1) | 0.00% (0) |" in printed
    assert "| **overall** | 7 | 14.29% (1) | 42.86% (3) |" in printed
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["mode"] == "pot" and metrics["overall"]["correct"] == 1
    assert metrics["tool_assisted"]["overall"] == {"total": 7, "correct": 3, "accuracy": 3 / 7}
    assert metrics["tool_assisted"]["failures"] == {"no_expression": 1, "parse_failed": 1, "eval_failed": 1}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| **overall** | 7 | 14.29% (1) | 42.86% (3) |" in report
    assert "| division | 2 | 0 | 0 | 1 |" in report and "| **total** | 7 | 1 | 1 | 1 |" in report
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["extracted"], r["correct"], r["executed"], r["tool_correct"]) for r in rows][3:5] == [
        ("2", False, "954861.2089", True), ("767.94", True, None, False)]

    # A later PoT run against this one as baseline: four columns.
    again = tmp_path / "again"
    assert math_cli.main(["--items", items, "--predictions", preds, "--output_dir", str(again), "--mode", "pot",
                          "--baseline", str(out / "metrics.json")]) == 0
    assert ("| category | n | tool-free before | tool-assisted (PoT) before | tool-free after | "
            "tool-assisted (PoT) after |") in capsys.readouterr().out


def test_finetune_report_shows_both_columns(tmp_path, capsys):
    from eval.run_report import build_sections
    from research.rundir.layout import RunLayout

    items, preds = _write(tmp_path / "items.jsonl", ITEMS), _write(tmp_path / "preds.jsonl", PREDS)
    run = tmp_path / "run"
    for model in ("base", "lora"):
        assert math_cli.main(["--items", items, "--predictions", preds, "--mode", "pot",
                              "--output_dir", str(RunLayout(run).eval_dir("math", model))]) == 0
    text = build_sections(run)["Math accuracy (held-out items)"]
    assert "| **overall** | 7 | 14.29% (1) | 42.86% (3) | 14.29% (1) | 42.86% (3) |" in text
    assert "PoT expressions that could not be used (after)" in text and "| **total** | 7 | 1 | 1 | 1 |" in text
    # tool-free side by side: only e (767.94) is right, under every rule (d's last number is the exponent 2)
    sections = build_sections(run)
    by_rule = sections["Tool-free accuracy by rule"]
    assert "**not the official rule**" in by_rule
    assert "| **overall** | 7 |" + " 14.29% (1) |" * 6 in by_rule
    wrong = sections["Wrong tool-free predictions (after, up to 2 per category)"].splitlines()
    assert [line.split(" | ")[0] for line in wrong[2:]] == ["| division", "| division", "| linear_equation",
                                                             "| power", "| power", "| subtraction"]
