"""preprocess.synthesize: contest formats, category mix, determinism, CLI."""
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from preprocess.classify import classify
from preprocess.cot import synthesize
from preprocess.synthesize import CONTEST_MIX, category_counts, generate_corpus, generate_labelled

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_deterministic_per_seed():
    assert generate_corpus(300, seed=7) == generate_corpus(300, seed=7)
    assert generate_corpus(300, seed=7) != generate_corpus(300, seed=8)
    assert generate_corpus(300, seed=7) == [item for _, item in generate_labelled(300, seed=7)]


def test_items_are_problem_solution_strings():
    items = generate_corpus(250, seed=1)
    assert len(items) == 250
    for it in items:
        assert set(it) == {"problem", "solution"}
        assert isinstance(it["problem"], str) and it["problem"]
        assert isinstance(it["solution"], str) and it["solution"]


@pytest.mark.parametrize("n", [200, 201, 1000])
def test_every_category_at_least_three_times(n):
    counts = Counter(cat for cat, _ in generate_labelled(n, seed=0))
    assert sum(counts.values()) == n
    assert set(counts) == set(CONTEST_MIX)
    assert min(counts.values()) >= 3


def test_mix_follows_contest_counts():
    n = 20000
    counts = category_counts(n)
    total = sum(CONTEST_MIX.values())
    assert sum(counts.values()) == n
    for cat, weight in CONTEST_MIX.items():
        proportional = (n - 3 * len(CONTEST_MIX)) * weight / total
        assert abs(counts[cat] - 3 - proportional) < 1, cat
    assert counts["addition"] > counts["square_root"] > counts["function_value"] > counts["mass"]
    assert category_counts(0) == {c: 0 for c in CONTEST_MIX}
    with pytest.raises(ValueError):
        category_counts(-1)


def test_every_generated_item_classifies_and_verifies():
    failures = []
    for cat, it in generate_labelled(3000, seed=2024):
        got = classify(it["problem"], it["solution"])
        res = synthesize(it["problem"], it["solution"], got)
        if got != cat or not res.verified:
            failures.append((cat, got, it, res.reason))
    assert failures == []


def test_number_shapes_match_contest():
    two_dp = r"-?\d{1,4}\.\d{2}"
    for cat, it in generate_labelled(2000, seed=5):
        p, s = it["problem"], it["solution"]
        if cat in ("addition", "subtraction", "multiplication", "division"):
            m = re.fullmatch(rf"计算 ({two_dp}) [-+*/] ({two_dp}) 等于多少？", p)
            assert m and "-0.00" not in p, p
            assert s.startswith(p[3:-6] + " = "), (p, s)
        elif cat == "power":
            m = re.fullmatch(rf"计算 ({two_dp}) 的 ([0-5]) 次方？", p)
            assert m and s.startswith(f"{m[1]}^{m[2]} = "), p
        elif cat == "square_root":
            assert re.fullmatch(r"计算 \d{1,4}\.\d{2} 的平方根？", p), p
        elif cat == "function_value":
            m = re.fullmatch(r"当 x = (\d+\.\d{2}) 时，求函数 y = (\d+)x\^(\d+) 的值", p)
            assert m and 0.1 <= float(m[1]) <= 10 and 1 <= int(m[2]) <= 100 and 1 <= int(m[3]) <= 100, p
        elif cat == "mean":
            xs = json.loads(p.split("：", 1)[1])
            assert 3 <= len(xs) <= 10 and all(1 <= x <= 100 for x in xs)
            assert s == f"平均值为 {sum(xs) / len(xs)}"
        elif cat == "simplify":
            num, den = map(int, re.fullmatch(r"将分数 (\d+)/(\d+) 进行简化。", p).groups())
            assert 1 <= num < den <= 10
        elif cat == "mass":
            d, v = map(int, re.fullmatch(r"某物体的密度为 (\d+) 克/立方厘米，体积为 (\d+) 立方厘米，请计算该物体的质量。", p).groups())
            assert 1 <= d <= 10 and 1 <= v <= 10 and s == f"{d * v} 克"
        elif cat == "english":
            assert re.search(r"\\boxed\{.+\}", s) and not re.search(r"[\u4e00-\u9fff]", p + s)


def test_cli_writes_atomically(tmp_path):
    out = tmp_path / "sub" / "corpus.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "preprocess.synthesize", "--n", "230", "--seed", "3", "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == generate_corpus(230, seed=3)
    assert sorted(p.name for p in out.parent.iterdir()) == ["corpus.jsonl"]  # no temp file left
    bad = subprocess.run([sys.executable, "-m", "preprocess.synthesize", "--n", "-1", "--output", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--n" in bad.stderr
