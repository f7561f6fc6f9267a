"""preprocess.recipes: every line of every real item's ``steps`` target re-checks, its answer passes
``exact``, and the step checker rejects planted wrong lines."""
import json
from collections import Counter

import pytest

from eval.compare import is_correct
from preprocess.answer.extract import extract_answer
from preprocess.classify import classify
from preprocess.cot import synthesize
from preprocess.recipes import RECIPES, StepError, check_steps
from preprocess.recipes.check import check_line

pytestmark = pytest.mark.unit

# Items per computational category in the 1,000-item real sample.
SAMPLE_COUNTS = {"addition": 150, "subtraction": 170, "multiplication": 161, "division": 159,
                 "square_root": 70, "power": 82, "linear_equation": 78, "function_value": 39, "mean": 36,
                 "area": 13, "sales": 9, "discount": 7}


@pytest.fixture(scope="module")
def steps_results(shared_file):
    path = shared_file("ascend2024_math/sample_dev.jsonl")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        category = classify(row["problem"], row["solution"])
        if category in RECIPES:
            out.append((category, row, synthesize(row["problem"], row["solution"], category, "steps")))
    return out


def test_every_real_item_rechecks_line_by_line_and_passes_exact(steps_results):
    per = Counter()
    for category, row, res in steps_results:
        assert res.verified, (row, res.reason)
        lines = res.cot.splitlines()
        check_steps(lines)  # again, independently of synthesize
        assert len(lines) >= 1 and all(line.strip() for line in lines)
        # The grader's own extraction and exact rule accept the target's final answer.
        assert is_correct(extract_answer(res.cot), res.answer, rule="exact"), (category, lines[-1], res.answer)
        assert res.cot.endswith(res.answer)
        per[category] += 1
    assert dict(per) == SAMPLE_COUNTS


def test_recipes_are_digit_level_where_the_budget_allows(steps_results):
    by_cat = {}
    for category, row, res in steps_results:
        by_cat.setdefault(category, (row, res.cot.splitlines()))
    # Column addition: one line per aligned digit column, carries written in.
    row, lines = by_cat["addition"]
    assert row["problem"] == "计算 -9991.13 + -796.39 等于多少？"
    assert lines == ["-9991.13+(-796.39)=-(9991.13+0796.39)", "3+9=12", "1+3+1=5", "1+6=7", "9+9=18",
                     "9+7+1=17", "9+0+1=10", "-(9991.13+0796.39)=-10787.52"]
    # Subtraction with borrows: the borrowed ten is written into the column.
    cot = synthesize("计算 9690.26 - 8922.32 等于多少？", "9690.26 - 8922.32 = 767.94", "subtraction", "steps").cot
    assert cot.splitlines() == ["6-2=4", "12-3=9", "10-2-1=7", "9-2-1=6", "16-9=7", "9-8-1=0",
                                "9690.26-8922.32=767.94"]
    # Multiplication: one-digit partial products, then one shift and one addition per digit.
    row, lines = by_cat["multiplication"]
    assert lines[0] == "7904.09*9169.76=790409*916976/10**4"
    assert "790409*9=7113681" in lines and "7113681*10+790409=71927219" in lines
    # Long division and square root: integer part and two digits explicitly, then the 28-digit answer.
    row, lines = by_cat["division"]
    assert lines[1:4] == ["612287=0*628425+612287", "6122870=9*628425+467045", "4670450=7*628425+271475"]
    row, lines = by_cat["square_root"]
    assert lines[:3] == ["32**2<=1056.35<33**2", "32.5**2<=1056.35<32.6**2", "32.50**2<=1056.35<32.51**2"]
    # Power of a negative base: the sign rule (-a)^n first.
    cot = synthesize("计算 -185.24 的 3 次方？", "-185.24^3 = -6356298.981824", "power", "steps").cot
    assert cot.splitlines()[0] == "(-185.24)**3=-185.24**3"


@pytest.mark.parametrize("lines, bad_step", [
    (["3+9=12", "1+3+1=5", "9+9=17"], 3),                      # wrong column sum
    (["6-2=4", "12-3=8"], 2),                                  # wrong borrow column
    (["790409*9=7113681", "7113681*10+790409=71927209"], 2),   # wrong accumulation
    (["6122870=9*628425+467044"], 1),                          # wrong remainder
    (["32.5**2<=1056.35<32.6**2", "32.6**2<=1056.35<32.7**2"], 2),  # bracket that does not hold
    (["√1056.35≈32.50153842512689429138897597"], 1),           # 28th digit wrong
    (["6122.87/(-6284.25)≈-0.9743199268011298086486066411"], 1),  # 23rd digit wrong
    (["800/71≈11.267605633802828"], 1),                         # float answer off by more than ulps
    (["x: 20/39"], 1),                                          # no claim at all
    (["2**10000000=1"], 1),                                     # exponent over the evaluator's bound
])
def test_checker_rejects_planted_wrong_line(lines, bad_step):
    with pytest.raises(StepError, match=f"step {bad_step}:"):
        check_steps(lines)


def test_planted_wrong_line_in_a_real_target_is_rejected(steps_results):
    category, row, res = next(r for r in steps_results if r[0] == "multiplication")
    lines = res.cot.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("71927219*10+"))
    left, value = lines[i].rsplit("=", 1)
    planted = [*lines[:i], f"{left}={int(value) + 10}", *lines[i + 1:]]
    check_steps(lines)
    with pytest.raises(StepError, match=f"step {i + 1}: false claim"):
        check_steps(planted)


@pytest.mark.parametrize("line", [
    "√1056.35≈32.50153842512689429138897596",         # decimal's 28-digit rounding
    "800/71≈11.267605633802818",                       # float (71-63)/71*100, 2 ulps from 800/71
    "559/9≈62.111111111111114",                         # float repr of the mean
    "y: 68*4.197287424006285596063218183E+83≈2.854155448324274205322988364E+85",
    "183.94^5=210562442992.2269624224",                 # the contest's ^ and an 22-digit literal, exact
    "32**2<=1056.35<33**2",
])
def test_checker_accepts_true_claims(line):
    check_line(line)


def test_long_literals_are_not_cut_to_float_precision():
    # 18 significant digits: a float would make both sides equal.
    with pytest.raises(StepError):
        check_line("6223411.906984*183.94=1144734386.17063697")
    check_line("6223411.906984*183.94=1144734386.17063696")


def test_styles_select_and_unknown_style_fails():
    problem, solution = "计算 12.50 + 2.75 等于多少？", "12.50 + 2.75 = 15.25"
    classic = synthesize(problem, solution, "addition", "classic").cot
    steps = synthesize(problem, solution, "addition", "steps").cot
    assert classic.endswith(solution) and "绝对值" in classic
    assert steps.splitlines() == ["12.50+2.75=12.50+02.75", "0+5=5", "5+7=12", "2+2+1=5", "1+0=1",
                                  "12.50+02.75=15.25"]
    with pytest.raises(ValueError, match="unknown style"):
        synthesize(problem, solution, "addition", "fancy")


def _contest_file(tmp_path, rows):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_pipeline_default_style_is_steps_and_conversations_carry_category(tmp_path):
    from preprocess.config import PreprocessConfig, load_config
    from preprocess.pipeline import run

    rows = [{"problem": "计算 -9991.13 + -796.39 等于多少？", "solution": "-9991.13 + -796.39 = -10787.52"},
            {"problem": "计算 1056.35 的平方根？", "solution": "√1056.35 = 32.50153842512689429138897596"},
            {"problem": "将分数 4/10 进行简化。", "solution": "最简化的形式为：2/5"}]
    data = _contest_file(tmp_path, rows)
    # target_style cot: the steps alone (the default pot_cot puts the expression line first).
    report = run([data], tmp_path / "steps", progress=False, config=PreprocessConfig(target_style="cot"))
    assert report["settings"]["cot_style"] == "steps"
    conv = json.loads((tmp_path / "steps" / "conversations.json").read_text(encoding="utf-8"))
    assert [c["category"] for c in conv] == ["addition", "square_root", "simplify"]
    for c in conv:
        check_steps(c["conversations"][1]["value"].splitlines())
    assert conv[2]["conversations"][1]["value"].splitlines() == ["10=2*4+2", "4=2*2+0", "4/2=2", "10/2=5",
                                                                  "4/10=2/5"]
    run([data], tmp_path / "classic", progress=False,
        config=PreprocessConfig(cot_style="classic", target_style="cot"))
    classic = json.loads((tmp_path / "classic" / "conversations.json").read_text(encoding="utf-8"))
    assert classic[0]["conversations"][1]["value"].endswith(rows[0]["solution"])
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("cot_style: fancy\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.yaml: cot_style must be one of \('classic', 'steps', 'digits'\)"):
        load_config(cfg)


def test_rounded_steps_targets_stay_true_claims(tmp_path):
    from preprocess.config import load_config
    from preprocess.pipeline import run

    rows = [{"problem": "计算 6122.87 / -6284.25 等于多少？",
             "solution": "6122.87 / -6284.25 = -0.9743199268011298086486056411"},
            {"problem": "计算 -9991.13 + -796.39 等于多少？", "solution": "-9991.13 + -796.39 = -10787.52"}]
    data = _contest_file(tmp_path, rows)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("rounding: {division: 2, addition: 1}\ntarget_style: cot\n", encoding="utf-8")
    run([data], tmp_path / "out", progress=False, config=load_config(cfg))
    conv = json.loads((tmp_path / "out" / "conversations.json").read_text(encoding="utf-8"))
    finals = [c["conversations"][1]["value"].splitlines()[-1] for c in conv]
    assert finals == ["6122.87/(-6284.25)≈-0.97", "-(9991.13+0796.39)≈-10787.5"]
    for c in conv:
        check_steps(c["conversations"][1]["value"].splitlines())
