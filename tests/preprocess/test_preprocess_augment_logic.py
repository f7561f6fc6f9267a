"""Verified logic augmentation: generated puzzles, both solvers, agreement filter, CLI."""
import json
from collections import Counter

import pytest

from preprocess import augment_logic
from preprocess.logic import tianchi_records
from preprocess.logic_puzzles import KINDS, generate
from preprocess.logic_solvers import asp_answers, asp_program, count_rankings, csp_answers

pytestmark = pytest.mark.unit

# 甲 west of 乙 west of 丙 (a chain); 丁 unrelated. Closed world: 甲 is west of 丙 by transitivity,
# 丙 is not west of 甲, and 丁 is west of nobody.
WEST = {"id": "w", "kind": "west", "names": {"cities": ["甲", "乙", "丙", "丁"]}, "n": 4,
        "facts": [["west", 0, 1], ["west", 1, 2]], "problem": "p",
        "questions": [
            {"question": "甲是否在丙的西边？", "options": ["是", "否"], "conds": [["west", 0, 2], ["not", ["west", 0, 2]]]},
            {"question": "丙是否在甲的西边？", "options": ["是", "否"], "conds": [["west", 2, 0], ["not", ["west", 2, 0]]]},
            {"question": "哪个城市在丙的西边？", "options": ["丁", "丙", "乙"],
             "conds": [["west", 3, 2], ["west", 2, 2], ["west", 1, 2]]},
            {"question": "下列哪项成立？", "options": ["甲在乙的西边", "乙在丙的西边"],  # both true: undetermined
             "conds": [["west", 0, 1], ["west", 1, 2]]},
        ]}


@pytest.mark.parametrize("solve", [csp_answers, asp_answers])
def test_each_solver_derives_the_closed_world_answers(solve):
    assert solve(WEST) == ["A", "B", "C", None]


def test_ranking_needs_exactly_one_ranking():
    facts = [["before", 0, 1], ["before", 1, 2]]  # 0 < 1 < 2: one ranking of three
    assert count_rankings(3, facts) == 1 and count_rankings(3, facts[:1]) == 3
    spec = {"kind": "ranking", "n": 3, "facts": facts, "questions": [
        {"options": ["x", "y", "z"], "conds": [["at", 0, 2], ["at", 1, 2], ["at", 2, 2]]}]}
    assert csp_answers(spec) == asp_answers(spec) == ["C"]
    loose = {**spec, "facts": facts[:1]}  # three rankings fit: no answer from either solver
    assert csp_answers(loose) == asp_answers(loose) == [None]
    assert "1 { rank(P, K) : place(K) } 1 :- person(P)." in asp_program(spec)


def test_generated_puzzles_are_verified_by_both_solvers():
    specs = generate(60, seed=3)
    assert Counter(s["kind"] for s in specs) == {k: 20 for k in KINDS}
    problems, dropped, counts = augment_logic.verify(specs)
    assert counts["generated"] == 60 and counts["disagreed"] == 0 and dropped == []
    assert counts["kept"] == len(problems) == 60 - counts["no_questions"]
    by_id = {s["id"]: s for s in specs}
    letters = Counter()
    for prob in problems:
        spec = by_id[prob["id"]]
        first, second = csp_answers(spec), asp_answers(spec)
        assert first == second
        assert [q["answer"] for q in prob["questions"]] == [x for x in first if x is not None]
        recs = tianchi_records(prob)  # valid training input
        assert [r["logic"]["question"].split("：")[0] for r in recs] == [
            f"选择题 {k}" for k in range(1, len(recs) + 1)]
        letters.update(q["answer"] for q in prob["questions"])
    assert counts["questions_kept"] == sum(letters.values()) >= 100
    assert len(letters) >= 4  # answers spread over the options, not always A
    assert generate(60, seed=3) == specs and generate(60, seed=4) != specs


def test_planted_disagreement_is_dropped_and_counted():
    specs = generate(9, seed=5)
    planted = specs[4]["id"]

    def second(spec):  # clingo's answers, with one letter of the planted puzzle moved to the next option
        answers = asp_answers(spec)
        if spec["id"] == planted:
            i = next(i for i, x in enumerate(answers) if x is not None)
            answers[i] = "ABCDEFG"[("ABCDEFG".index(answers[i]) + 1) % len(spec["questions"][i]["options"])]
        return answers

    problems, dropped, counts = augment_logic.verify(specs, second=second)
    assert counts["disagreed"] == 1 and [d["id"] for d in dropped] == [planted]
    assert dropped[0]["reason"] == "disagreed" and dropped[0]["first"] != dropped[0]["second"]
    assert planted not in {p["id"] for p in problems} and counts["kept"] == 8 - counts["no_questions"]


def test_cli_writes_problems_dropped_and_counts(tmp_path, capsys):
    assert augment_logic.main(["--n", "12", "--seed", "2", "--kinds", "west", "courses",
                               "--output", str(tmp_path)]) == 0
    counts = json.loads((tmp_path / "counts.json").read_text(encoding="utf-8"))
    assert json.loads(capsys.readouterr().out) == counts
    rows = [json.loads(x) for x in (tmp_path / "augmented.jsonl").read_text(encoding="utf-8").splitlines()]
    dropped = (tmp_path / "dropped.jsonl").read_text(encoding="utf-8").splitlines()
    assert counts["generated"] == 12 and len(rows) == counts["kept"] and len(dropped) == 12 - counts["kept"]
    assert {r["id"].rsplit("_", 1)[1] for r in rows} <= {"west", "courses"}
    with pytest.raises(SystemExit):
        augment_logic.main(["--n", "3", "--kinds", "maze", "--output", str(tmp_path)])
    with pytest.raises(ValueError, match="n must be >= 0"):
        generate(-1)
