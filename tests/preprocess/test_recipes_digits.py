"""preprocess.recipes.digits (cot_style ``digits``): every line re-checks, planted errors are caught,
the precision policy of division and square root, the token budget, and one token per digit under
both the SmolLM2 and the Llama 3 tokenizer."""
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from preprocess.classify import classify
from preprocess.cot import synthesize
from preprocess.pot_targets import pot_target
from preprocess.recipes import StepError
from preprocess.recipes.digits import DECIMALS, RECIPES, check_digit_steps, spaced
from preprocess.styles import COT_STYLE
from preprocess.synthesize import generate_labelled
from preprocess.templates import get_template

pytestmark = pytest.mark.unit

SMOLLM2_YAML = Path(__file__).resolve().parents[2] / "configs" / "smollm2_135m" / "finetune_lora_cpu.yaml"
_SPACED = re.compile(r"\d(?:[ .]\d)*")


def _digits(problem: str, solution: str, category: str):
    res = synthesize(problem, solution, category, "digits")
    assert res.verified, res.reason
    return res.cot.splitlines()


def test_signed_addition_and_subtraction_lines():
    # same signs: add the magnitudes, keep the sign; the padding column takes the final carry
    assert _digits("计算 -9991.13 + -796.39 等于多少？", "-9991.13 + -796.39 = -10787.52", "addition") == [
        "-9991.13+(-796.39)=-(0 9 9 9 1.1 3+0 0 7 9 6.3 9)", "3+9+0=12", "1+3+1=05", "1+6+0=07",
        "9+9+0=18", "9+7+1=17", "9+0+1=10", "0+0+1=01", "-1 0 7 8 7.5 2=-10787.52"]
    # different signs: the larger magnitude minus the smaller, its sign; a borrowed ten leads the line
    assert _digits("计算 -4985.71 + 1523.17 等于多少？", "-4985.71 + 1523.17 = -3462.54", "addition") == [
        "-4985.71+1523.17=-(0 4 9 8 5.7 1-0 1 5 2 3.1 7)", "11-7-0=4", "07-1-1=5", "05-3-0=2", "08-2-0=6",
        "09-5-0=4", "04-1-0=3", "00-0-0=0", "-0 3 4 6 2.5 4=-3462.54"]
    # a - -b is a + b; a zero difference has no sign
    assert _digits("计算 12.50 - -0.75 等于多少？", "12.50 - -0.75 = 13.25", "subtraction")[0] == \
        "12.50-(-0.75)=0 0 0 1 2.5 0+0 0 0 0 0.7 5"
    assert _digits("计算 2530.55 - 2530.55 等于多少？", "2530.55 - 2530.55 = 0.00", "subtraction")[-1] == \
        "0 0 0 0 0.0 0=0.00"
    # an operand longer than the contest's gets one more column than its digits
    assert len(_digits("计算 123456.5 + 1.25 等于多少？", "123456.5 + 1.25 = 123457.75", "addition")) == 1 + 9 + 1


def test_contest_shapes_share_one_layout():
    """Every operand of the contest's shape (<= 4 integer digits, 2 decimals) gives 7 column lines
    of 8 characters: each copied digit sits at the same distance back in every item."""
    shapes = set()
    for category, problem, target in _generated_targets():
        if category in ("addition", "subtraction"):
            lines = target.splitlines()[3:]  # after the restating, expression and sign lines
            shapes.add((len(lines), tuple(len(line) for line in lines[:-1]), len(lines[-1].split("=")[0].lstrip("-"))))
    assert shapes == {(8, (8,) * 7, 13)}


def test_checker_joins_spaced_digits_and_catches_planted_errors():
    lines = _digits("计算 -4985.71 + 1523.17 等于多少？", "-4985.71 + 1523.17 = -3462.54", "addition")
    check_digit_steps(lines)
    for i, wrong in ((0, "-4985.71+1523.17=-(0 4 9 8 5.7 1+0 1 5 2 3.1 7)"), (2, "07-1-1=6"),
                     (2, "17-1-1=5"), (8, "-0 3 4 6 2.5 5=-3462.54")):
        with pytest.raises(StepError, match=f"step {i + 1}"):
            check_digit_steps([*lines[:i], wrong, *lines[i + 1:]])


def test_wrong_answer_is_not_verified():
    res = synthesize("计算 -4985.71 + 1523.17 等于多少？", "-4985.71 + 1523.17 = -3462.55", "addition", "digits")
    assert not res.verified


def test_division_and_square_root_state_the_derived_decimals():
    lines = _digits("计算 6122.87 / -6284.25 等于多少？", "6122.87 / -6284.25 = -0.9743199268011298086486056411",
                    "division")
    # DECIMALS + 1 long-division digits (9, 7, 4), the answer rounded half up from them
    assert lines == ["6122.87/(-6284.25)=-612287/628425", "612287=0*628425+612287", "6122870=9*628425+467045",
                     "4670450=7*628425+271475", "2714750=4*628425+201050", "6122.87/(-6284.25)≈-0.97"]
    # a quotient that ends sooner is stated exactly, so the contest's exact rule accepts it
    assert _digits("计算 -12.50 / 4.00 等于多少？", "-12.50 / 4.00 = -3.125", "division")[-1] == "-12.50/4.00=-3.125"
    lines = _digits("计算 5337.16 的平方根？", "√5337.16 = 73.05586903185807699436894612", "square_root")
    assert lines[-2:] == ["73.055**2<=5337.16<73.056**2", "√5337.16≈73.06"] and DECIMALS == 2
    assert _digits("计算 2.25 的平方根？", "√2.25 = 1.5", "square_root")[-1] == "√2.25=1.5"


def test_other_categories_keep_their_steps_recipes():
    steps, recipes = COT_STYLE["steps"].recipes, COT_STYLE["digits"].recipes
    assert set(RECIPES) == {"addition", "subtraction", "division", "square_root"}
    assert all(recipes[c] is steps[c] for c in steps if c not in RECIPES)


def _generated_targets(n: int = 300) -> list[tuple[str, str, str]]:
    """``(category, problem, pot_cot target)`` of the generator's items with a digits recipe."""
    out = []
    for category, item in generate_labelled(n, seed=3):
        if category in RECIPES:
            assert classify(item["problem"], item["solution"]) == category
            res = synthesize(item["problem"], item["solution"], category, "digits")
            assert res.verified, res.reason
            out.append((category, item["problem"],
                        f"{pot_target(item['problem'], res.answer, category)}\n{res.cot}"))
    return out


def _spaced_literals(target: str) -> list[str]:
    """The digit-spaced literals of a target (``9 9 9 1.1 3``), without signs."""
    return [m for m in _SPACED.findall(target) if " " in m]


def test_budget_and_one_token_per_digit_smollm2():
    from research.llama3.records.encode import encode_conversation
    from research.llama3.tokenizers.tokenizer import tokenizer_from_config

    tok = tokenizer_from_config(str(SMOLLM2_YAML))
    tpl = get_template("vicuna_v1.1")
    targets = _generated_targets()
    assert {c for c, _, _ in targets} == set(RECIPES)
    over = Counter()
    for category, problem, target in targets:
        _, labels = encode_conversation(tok.encode, tpl, [(problem, target)], tok.bos_id, tok.eos_id)
        prompt = sum(1 for v in labels if v == -100)
        assert len(labels) - prompt <= 192, (category, target)  # the eval's 192 new tokens
        # seq_length 256 (+1 for the label shift); over it, pot_cot trains on the expression alone
        over[category] += len(labels) > 257
        for literal in _spaced_literals(target):
            assert len(tok.encode(literal)) == len(literal), literal  # one token per digit, space, point
    counts = Counter(c for c, _, _ in targets)
    assert over["addition"] == over["subtraction"] == over["square_root"] == 0
    assert over["division"] <= counts["division"] // 5, (over, counts)
    assert sum(len(_spaced_literals(t)) for _, _, t in targets) > 3 * len(targets) // 2


def test_one_token_per_digit_llama3(llama3_tokenizer_dir):
    from research.llama3.tokenizers.llama3_tokenizer import load_llama3_encoding

    enc = load_llama3_encoding(llama3_tokenizer_dir / "tokenizer.model")
    # unspaced, tiktoken groups digits; spaced, every character is one token
    assert [enc.decode([t]) for t in enc.encode("5740.03")] == ["574", "0", ".", "03"]
    targets = _generated_targets()
    for category, _, target in targets:
        assert len(enc.encode(target)) <= 192, (category, target)
        for literal in _spaced_literals(target):
            assert [enc.decode([t]) for t in enc.encode(literal)] == list(literal)
        if category in ("addition", "subtraction"):  # column lines: one digit a token, or a two-digit sum
            for line in target.splitlines()[3:-1]:  # after the restating, expression and sign lines
                assert all(len(enc.decode([t])) <= 2 for t in enc.encode(line)), line


def test_spaced_literal_reads_back():
    for literal in ("-9346.46", "0756.08", "13.25", "7"):
        assert Decimal(spaced(literal).replace(" ", "")) == Decimal(literal)
        assert spaced(literal).replace(" ", "") == literal
