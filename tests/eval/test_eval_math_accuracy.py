"""eval.math_accuracy: per-category scoring, contest score, Markdown table."""
import json
import re

import pytest

from eval.math_accuracy import contest_score, format_table, score

pytestmark = pytest.mark.unit

ITEMS = [
    {"id": 1, "category": "square_root", "problem": "计算 1056.35 的平方根？", "answer": "32.50153842512689429138897596"},
    {"id": 2, "category": "square_root", "problem": "计算 9755.49 的平方根？", "answer": "98.76988407404354142259372287"},
    {"id": 3, "category": "area", "problem": "长 59 宽 97", "answer": "5723"},
    {"id": 4, "category": "area", "problem": "长 32 宽 23", "answer": "736"},
    {"id": 5, "category": "area", "problem": "长 12 宽 53", "answer": "636"},
    {"id": 6, "category": "english", "problem": "x?", "answer": "\\frac{3}{4}"},
    {"id": 7, "category": "linear_equation", "problem": "解方程 -39x + 20 = 0", "answer": "0.5128205128205128"},
]
PREDICTIONS = [
    {"id": "1", "generation": "√1056.35 = 32.501538425126896"},        # float rendering
    {"id": 2, "generation": "√9755.49 = 98.77"},                      # rounded: wrong at 1e-6
    {"id": 3, "generation": "面积为 5723 平方厘米"},
    {"id": 4, "generation": "面积为 737 平方厘米"},
    {"id": 6, "generation": "So $x = \\boxed{0.75}$."},
    {"id": 7, "generation": "方程的解为：0.5128205128205128"},
    {"id": 99, "generation": "not an item: ignored"},
]


def test_score_counts_per_category_and_overall():
    result = score(ITEMS, PREDICTIONS)
    assert result["rule"] == "exact"  # the contest rule is the default
    assert result["categories"] == {
        "square_root": {"total": 2, "correct": 0, "accuracy": 0.0},
        "area": {"total": 3, "correct": 1, "accuracy": 1 / 3},
        "english": {"total": 1, "correct": 1, "accuracy": 1.0},
        "linear_equation": {"total": 1, "correct": 1, "accuracy": 1.0},
    }
    assert result["overall"] == {"total": 7, "correct": 3, "accuracy": 3 / 7}
    assert result["missing"] == 1  # item 5 has no prediction
    by_id = {r["id"]: r for r in result["items"]}
    assert [by_id[i]["extracted"] for i in range(1, 8)] == [
        "32.501538425126896", "98.77", "5723", "737", None, "0.75", "0.5128205128205128"]
    assert [by_id[i]["correct"] for i in range(1, 8)] == [False, False, True, False, False, True, True]
    assert by_id[5]["generation"] is None and by_id[3]["problem"] == "长 59 宽 97"
    json.dumps(result, ensure_ascii=False)  # metrics must be JSON-serialisable


def test_score_rule_changes_the_outcome():
    assert score(ITEMS, PREDICTIONS, rule="exact")["overall"]["correct"] == 3       # sqrt float fails
    # ...896 is the double's repr, 1.7e-15 off, not 32.50153842512689429... rounded at its last digit
    assert score(ITEMS, PREDICTIONS, rule="printed")["overall"]["correct"] == 3
    assert score(ITEMS, PREDICTIONS, rule="round:2")["overall"]["correct"] == 5     # 98.77 passes


def test_score_on_real_solutions_is_perfect(shared_file):
    path = shared_file("ascend2024_math/sample_dev.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    items, preds = [], []
    for i, row in enumerate(rows):
        sol = row["solution"]
        if "\\boxed" in sol:
            continue
        answer = re.split(r"=|为|：", sol)[-1].split()[0]
        items.append({"id": i, "category": "chinese", "problem": row["problem"], "answer": answer})
        preds.append({"id": i, "generation": sol})
    result = score(items, preds, rule="exact")
    assert result["overall"] == {"total": 974, "correct": 974, "accuracy": 1.0}


def test_score_errors():
    with pytest.raises(ValueError, match="duplicate item id"):
        score([{"id": 1, "answer": "1"}, {"id": "1", "answer": "2"}], [])
    with pytest.raises(ValueError, match="duplicate prediction id"):
        score([], [{"id": 1, "generation": "1"}, {"id": 1, "generation": "2"}])
    with pytest.raises(ValueError, match="unknown rule"):
        score(ITEMS, PREDICTIONS, rule="close")
    with pytest.raises(KeyError):
        score([{"id": 1}], [{"id": 1, "generation": "1"}])


def test_score_empty_and_uncategorized():
    assert score([], [])["overall"] == {"total": 0, "correct": 0, "accuracy": 0.0}
    result = score([{"id": "a", "answer": "2"}], [{"id": "a", "generation": "1 + 1 = 2"}])
    assert result["categories"] == {"uncategorized": {"total": 1, "correct": 1, "accuracy": 1.0}}


def test_contest_score():
    # Reference LoRA (3,407,872 params) at the winner's accuracy.
    assert contest_score(0.7161, 3_407_872) == pytest.approx(0.801142682241594, abs=1e-12)
    assert contest_score(0.2, 0) == pytest.approx(0.44)
    assert contest_score(1.0, 8.03e9) == pytest.approx(0.7)
    for bad in ((71.6, 1), (-0.1, 1), (0.5, -1)):
        with pytest.raises(ValueError):
            contest_score(*bad)
    with pytest.raises(ValueError):
        contest_score(0.5, 1, total=0)


def test_format_table_before_after():
    before = score(ITEMS, PREDICTIONS)
    after = score(ITEMS, PREDICTIONS, rule="round:2")
    assert format_table(before, after) == (
        "| category | n | accuracy before | accuracy after |\n"
        "|---|---:|---:|---:|\n"
        "| area | 3 | 33.33% (1) | 33.33% (1) |\n"
        "| english | 1 | 100.00% (1) | 100.00% (1) |\n"
        "| linear_equation | 1 | 100.00% (1) | 100.00% (1) |\n"
        "| square_root | 2 | 0.00% (0) | 100.00% (2) |\n"
        "| **overall** | 7 | 42.86% (3) | 71.43% (5) |\n"
    )


def test_format_table_single_run_and_mismatched_runs():
    before = score(ITEMS, PREDICTIONS)
    assert format_table(before).splitlines()[:3] == [
        "| category | n | accuracy |", "|---|---:|---:|", "| area | 3 | 33.33% (1) |"]
    after = score(ITEMS[:3], PREDICTIONS)  # a subset: area has 1 item, english is absent
    table = format_table(before, after)
    assert "| area | 3 / 1 | 33.33% (1) | 100.00% (1) |" in table
    assert "| english | 1 | 100.00% (1) | – |" in table
    assert "| **overall** | 7 / 3 | 42.86% (3) | 33.33% (1) |" in table


def _records(generations):
    items = [("a1", "addition", "12.5"), ("a2", "addition", "3"), ("d1", "division", "0.41935483870967744"),
             ("d2", "division", "98.76988407404354142259372287")]
    return [{"id": i, "category": c, "problem": f"问题 {i}", "answer": a, "generation": g,
             "extracted": g.split()[-1] if g else None, "correct": g.split()[-1] == a if g else False}
            for (i, c, a), g in zip(items, generations)]


def test_rule_table_grades_each_rule_per_category_before_and_after():
    from eval.math_accuracy import rule_table

    before = _records(["= 12", "= 4", "= 0.5", "= 97"])
    after = _records(["= 12.5", "= 4", "= 0.41935", "= 98.77"])
    table = rule_table(before, after)
    header = table.splitlines()[0]
    assert header == ("| category | n | exact before | exact after | printed before | printed after | "
                      "fewer_decimals (not the official rule) before | fewer_decimals (not the official rule) after |")
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[2:] for line in table.splitlines()[2:]}
    # after: exact 1/2 addition, 0/2 division; printed adds 0.41935 (5 digits) but not 98.77 (4);
    # fewer_decimals adds both; before: 12 for 12.5 rounds to 13 at 0 decimals, so nothing passes.
    assert rows["addition"][:2] == ["0.00% (0)", "50.00% (1)"]
    assert rows["division"][1] == "0.00% (0)" and rows["division"][3] == "50.00% (1)"
    assert rows["division"][5].rstrip(" |") == "100.00% (2)"
    assert rows["**overall**"][0] == "0.00% (0)" and rows["**overall**"][5].rstrip(" |") == "75.00% (3)"


def test_wrong_examples_lists_the_first_wrong_predictions_per_category():
    from eval.math_accuracy import wrong_examples

    records = _records(["= 12.5", "x | = 4", "= 0.5", "= 97"])
    text = wrong_examples(records, per_category=1)
    lines = text.splitlines()
    assert lines[0] == "| category | problem | reference | extracted | end of the generation |"
    assert lines[2] == "| addition | 问题 a2 | 3 | 4 | x \\| = 4 |"  # a | in the text stays in its cell
    assert lines[3].startswith("| division | 问题 d1 | 0.41935483870967744 | 0.5 |") and len(lines) == 4
    assert wrong_examples(_records(["= 12.5", "= 3", "= 0.41935483870967744", "= 98.76988407404354142259372287"])) \
        == "(none wrong)\n"
