"""The grader against a hand-labelled set of answer styles (tests/eval/data/answer_styles.jsonl).

80 cases are real items of ascend2024_math/sample_dev.jsonl (``source`` names the line) written in
the styles a model produces: correct, wrong last digit, rounded, float rendering, LaTeX, units,
Chinese phrasing, thousands separators, scientific notation, fractions; 6 are simplify items on the
contest's template (the sample has none). ``label`` is a human reading of the contest rule "如计算
结果（数值）与正确答案相同": does the text state the reference's value (a float reference counts as
the value it rounds). Grading = preprocess.answer.extract + eval.compare, as eval.math does it.
"""
import json
from collections import Counter
from pathlib import Path

import pytest

from preprocess.answer.extract import extract_answer
from eval.math_accuracy import score

pytestmark = pytest.mark.unit

CASES = [json.loads(line) for line in
         (Path(__file__).parent / "data" / "answer_styles.jsonl").read_text(encoding="utf-8").splitlines()]
# Where graders and labels part: extraction limits every rule shares (an answer followed by a
# check, "× 10^11", "cm}^2"), and for printed the rounded answers it accepts by design.
EXTRACTION_MISSES = ["s05", "s43", "s69"]
PRINTED_ROUNDINGS = ["s09", "s19", "s25", "s27", "s28", "s37", "s42"]


def _disagreements(rule):
    items = [{k: c[k] for k in ("id", "category", "problem", "answer")} for c in CASES]
    result = score(items, [{"id": c["id"], "generation": c["generation"]} for c in CASES], rule=rule)
    labels = {c["id"]: c["label"] for c in CASES}
    return result, sorted(r["id"] for r in result["items"] if r["correct"] != labels[r["id"]])


def test_the_set_covers_the_styles():
    assert len(CASES) == 86 and len({c["id"] for c in CASES}) == 86
    assert Counter(c["label"] for c in CASES) == {True: 53, False: 33}
    styles = Counter(c["style"] for c in CASES)
    for style in ("correct", "wrong_last_digit", "rounding", "latex", "units", "chinese", "fraction",
                  "float_repr", "decimal_28", "thousands", "scientific", "unreduced"):
        assert styles[style] >= 1, style
    assert len({c["category"] for c in CASES}) == 14 - 1  # every contest category but mass


def test_exact_agrees_with_the_labels():
    result, disagree = _disagreements("exact")
    assert disagree == EXTRACTION_MISSES
    assert len(CASES) - len(disagree) == 83  # 96.5%
    assert result["overall"]["correct"] == 53 - len(EXTRACTION_MISSES)  # exact never passes a wrong answer


def test_printed_agrees_with_the_labels_except_its_roundings():
    result, disagree = _disagreements("printed")
    assert disagree == sorted(EXTRACTION_MISSES + PRINTED_ROUNDINGS)
    assert len(CASES) - len(disagree) == 76  # 88.4%
    by_id = {c["id"]: c for c in CASES}
    assert all(by_id[i]["style"] in ("rounding", "float_repr", "integer_rounding") for i in PRINTED_ROUNDINGS)


def test_references_are_the_real_sample_answers(shared_file):
    lines = shared_file("ascend2024_math/sample_dev.jsonl").read_text(encoding="utf-8").splitlines()
    for case in CASES:
        if case["source"].startswith("sample_dev.jsonl:"):
            row = json.loads(lines[int(case["source"].split(":")[1]) - 1])
            assert row["problem"] == case["problem"]
            assert extract_answer(row["solution"]) == case["answer"]
