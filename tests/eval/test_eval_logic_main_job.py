"""eval.logic for the main job: preprocess's held-out eval.jsonl (mixed math + logic), chance
baseline, default votes, and the run report's logic section."""
import argparse
import json

import pytest

from eval import logic as logic_cli
from eval import run_report
from eval.files import read_jsonl
from eval.logic_report import run_section
from eval.logic_vote import chance, flatten_items, split_rows
from preprocess import augment_logic
from preprocess.cli import run_main
from preprocess.synthesize import main as generate_math
from preprocess.pipeline import run as preprocess
from research.rundir.layout import RunLayout

pytestmark = pytest.mark.unit


def test_chance_baseline():
    qs = [{"problem_id": "p", "options": ["a", "b"]}, {"problem_id": "p", "options": list("abcd")},
          {"problem_id": "q", "options": list("abc")}]
    c = chance(qs)
    assert c["questions"] == pytest.approx((1 / 2 + 1 / 4 + 1 / 3) / 3)
    assert c["problems"] == pytest.approx((1 / 8 + 1 / 3) / 2)  # all sub-questions of a problem right
    assert c["mean_accuracy"] == pytest.approx(((1 / 2 + 1 / 4) / 2 + 1 / 3) / 2)
    assert chance([]) == {"questions": 0.0, "problems": 0.0, "mean_accuracy": 0.0}


@pytest.fixture(scope="module")
def mixed_eval(tmp_path_factory):
    """preprocess's eval.jsonl of 40 generated contest math items + verified generated logic puzzles."""
    work = tmp_path_factory.mktemp("mixed")
    assert generate_math(["--n", "40", "--seed", "1", "--output", str(work / "math.jsonl")]) == 0
    assert augment_logic.main(["--n", "20", "--seed", "1", "--output", str(work / "aug")]) == 0
    report = preprocess([str(work / "math.jsonl"), str(work / "aug" / "augmented.jsonl")], work / "data",
                        eval_size=30, seed=0, progress=False)
    return work / "data" / "eval.jsonl", report


def test_items_of_a_mixed_eval_file(mixed_eval):
    path, report = mixed_eval
    problems, items, skipped = split_rows(read_jsonl(path))
    assert problems == [] and len(items) == report["per_category"]["logic"]["eval"] > 0
    assert skipped == 30 - len(items) > 0
    qs = flatten_items(items)
    assert all(q["answer"] == it["answer"] and q["key"] == f"{it['logic']['problem_id']}#{it['logic']['question_index']}"
               for q, it in zip(qs, items))
    with pytest.raises(ValueError, match=r"f: item 1 \('x'\): answer 'C'"):
        flatten_items([{**items[0], "id": "x", "answer": "C",
                        "logic": {**items[0]["logic"], "options": ["a", "b"]}}], where="f: ")


def test_cli_scores_logic_items_with_chance_and_writes_no_submission(mixed_eval, tmp_path, capsys):
    path, _ = mixed_eval
    qs = flatten_items(split_rows(read_jsonl(path))[1])
    right = [{"key": q["key"], "adapter": "a", "generation": f"答案是：{q['answer'].lower()}"} for q in qs]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in right), encoding="utf-8")
    out = tmp_path / "out"
    assert logic_cli.main(["--items", str(path), "--predictions", str(samples), "--output_dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["questions"] == len(qs) and m["skipped_other_categories"] == 30 - len(qs)
    assert m["ensemble"]["questions"]["accuracy"] == 1.0 and m["ensemble"]["problems"]["accuracy"] == 1.0
    assert m["chance"] == pytest.approx(chance(qs)) and 0 < m["chance"]["questions"] < 0.6
    assert m["submission_file"] is None and not (out / "submission.jsonl").exists()
    printed = capsys.readouterr().out
    assert f"| chance (1/options) | {100 * m['chance']['questions']:.2f}% |" in printed
    assert "| **vote (all)** | 100.00%" in (out / "report.md").read_text(encoding="utf-8")


def test_default_votes_small_on_cpu(tmp_path):
    ns = argparse.Namespace
    assert logic_cli.default_votes(ns(backend="transformers", device="cpu")) == logic_cli.DEFAULT_VOTES["cpu"] == 3
    assert logic_cli.default_votes(ns(backend="transformers", device="cuda:0")) == 5
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("context:\n  device_target: Ascend\n", encoding="utf-8")
    assert logic_cli.default_votes(ns(backend="mindformers", config=str(yaml_path))) == 5
    yaml_path.write_text("context:\n  device_target: CPU\n", encoding="utf-8")
    assert logic_cli.default_votes(ns(backend="mindformers", config=str(yaml_path))) == 3


def _metrics(correct_of_four, adapters=("base",)):
    """eval.logic metrics of two 2-question problems (options 2 and 4), ``correct_of_four`` right."""
    acc = {"questions": {"total": 4, "correct": correct_of_four, "accuracy": correct_of_four / 4},
           "problems": {"total": 2, "all_correct": correct_of_four // 2, "accuracy": (correct_of_four // 2) / 2,
                        "mean_accuracy": correct_of_four / 4}}
    return {"items_file": "eval.jsonl", "problems": 2, "questions": 4, "adapters": list(adapters),
            "ensemble": acc, "per_adapter": {a: acc for a in adapters},
            "chance": {"questions": 0.375, "problems": 0.125, "mean_accuracy": 0.375},
            "source": {"num_samples": 3, "second_round": None, "temperature": 0.7},
            "second_round_questions": 1, "no_majority_after_vote": 0, "no_letter": 0}


def test_run_report_logic_section_only_when_logic_was_graded(tmp_path):
    run = tmp_path / "run"
    for model, m in (("base", _metrics(1)), ("lora", _metrics(4, ("/r/bag_00/lora.ckpt", "/r/bag_01/lora.ckpt")))):
        out = RunLayout(run).eval_dir("logic", model)
        out.mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps(m), encoding="utf-8")
    sections = run_report.build_sections(run)
    text = sections["Logic accuracy (held-out sub-questions, eval.logic)"]
    assert "Math accuracy (held-out items)" not in sections  # no math items in this run
    assert text == run_section(_metrics(1), _metrics(4, ("/r/bag_00/lora.ckpt", "/r/bag_01/lora.ckpt")))
    for row in ("| before fine-tuning | 25.00% (1/4) | 0.00% (0/2) | 25.00% |",
                "| after fine-tuning: bag_01/lora.ckpt | 100.00% (4/4) | 100.00% (2/2) | 100.00% |",
                "| after fine-tuning: **vote of 2 adapters** | 100.00% (4/4) |",
                "| chance (1/options) | 37.50% | 12.50% | 37.50% |",
                "3 sample(s) per question and adapter (temperature 0.7), 2 adapter(s) pooled, 3 more"):
        assert row in text, row
    math_only = tmp_path / "math"
    math_only.mkdir()
    sections = run_report.build_sections(math_only)
    assert sections["Math accuracy (held-out items)"] == run_report.MISSING
    assert not any(k.startswith("Logic") for k in sections)
    assert "| after fine-tuning | (missing) | | |" in run_section(_metrics(2), None)


def test_eval_math_grades_only_the_math_items_of_a_mixed_file(mixed_eval, tmp_path):
    from eval import math as math_cli

    path, _ = mixed_eval
    rows = read_jsonl(path)
    math_rows = [r for r in rows if "logic" not in r]
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "generation": f"答案是 {r['answer']}"}) + "\n"
                             for r in math_rows), encoding="utf-8")
    out = tmp_path / "math"
    assert math_cli.main(["--items", str(path), "--predictions", str(preds), "--output_dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["overall"]["total"] == len(math_rows) and m["overall"]["accuracy"] == 1.0
    assert m["skipped_logic_items"] == len(rows) - len(math_rows) > 0
    logic_only = tmp_path / "logic.jsonl"
    logic_only.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows if "logic" in r),
                          encoding="utf-8")
    assert run_main(math_cli.main, ["--items", str(logic_only), "--predictions", str(preds),
                          "--output_dir", str(tmp_path / "none")]) == 2
