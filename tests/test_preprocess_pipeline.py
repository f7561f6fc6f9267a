"""preprocess.pipeline / python -m preprocess end to end on a generated corpus plus bad lines."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from preprocess.generate import generate_labelled
from preprocess.pipeline import ITEM_FIELDS, run

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = ["conversations.json", "eval.jsonl", "items.jsonl", "rejected.jsonl", "report.json", "report.md"]


@pytest.fixture()
def corpus(tmp_path):
    """A generated corpus (own duplicates removed) followed by known bad, duplicate and wrong lines."""
    seen, labelled = set(), []
    for cat, it in generate_labelled(400, seed=11):
        if it["problem"] not in seen:
            seen.add(it["problem"])
            labelled.append((cat, it))
    assert "计算 1.25 + 2.50 等于多少？" not in seen
    lines = [json.dumps(it, ensure_ascii=False) for _, it in labelled]
    n_good = len(lines)
    lines += [
        '{"problem": "truncated',                                                       # bad JSON
        json.dumps({"problem": "计算 1.00 + 1.00 等于多少？"}, ensure_ascii=False),      # no solution
        json.dumps({"problem": "", "solution": "1"}),                                   # empty problem
        "",                                                                             # blank
        json.dumps(dict(labelled[0][1], problem=" " + labelled[0][1]["problem"].replace(" ", "  ")),
                   ensure_ascii=False),                                                 # duplicate
        json.dumps({"problem": "计算 1.25 + 2.50 等于多少？", "solution": "1.25 + 2.50 = 3.85"},
                   ensure_ascii=False),                                                 # wrong answer
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, labelled, n_good


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_end_to_end(corpus, tmp_path):
    path, labelled, n_good = corpus
    out = tmp_path / "out"
    report = run([str(path)], out, eval_size=40, seed=5, progress=False)

    assert sorted(p.name for p in out.iterdir()) == OUTPUTS  # and no temp files left behind
    assert report["read"] == n_good + 5
    assert report["rejected"] == 3
    assert report["duplicates"] == 1
    assert report["kept"] == n_good + 1
    assert report["read"] == report["kept"] + report["duplicates"] + report["rejected"]
    assert report["verified"] == n_good and report["verify_failed"] == 1
    assert report["eval"] == 40 and report["train"] == n_good + 1 - 40
    assert report["invariant"] == (
        f"read = kept + duplicates + rejected: {n_good + 5} = {n_good + 1} + 1 + 3")
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report

    items = _jsonl(out / "items.jsonl")
    assert len(items) == report["kept"]
    assert all(tuple(it) == ITEM_FIELDS for it in items)
    assert len({it["id"] for it in items}) == len(items)
    expected_cats = Counter(cat for cat, _ in labelled) + Counter(["addition"])
    assert Counter(it["category"] for it in items) == expected_cats
    wrong = [it for it in items if not it["verified"]]
    assert [w["problem"] for w in wrong] == ["计算 1.25 + 2.50 等于多少？"]

    per = report["per_category"]
    assert {c: v["kept"] for c, v in per.items()} == dict(expected_cats)
    assert per["addition"]["verified"] == per["addition"]["kept"] - 1
    assert sum(v["eval"] for v in per.values()) == 40
    assert sum(v["train"] for v in per.values()) == report["train"]

    held = _jsonl(out / "eval.jsonl")
    assert len(held) == 40 and all(h["verified"] for h in held)
    assert all(tuple(h) == ITEM_FIELDS for h in held)
    held_ids = {h["id"] for h in held}

    conv = json.loads((out / "conversations.json").read_text(encoding="utf-8"))
    assert len(conv) == report["conversations"] == n_good - 40
    by_id = {it["id"]: it for it in items}
    for c in conv:
        assert c["id"] not in held_ids and by_id[c["id"]]["verified"]
        human, gpt = c["conversations"]
        assert human == {"from": "human", "value": by_id[c["id"]]["problem"]}
        assert gpt["from"] == "gpt" and gpt["value"] == by_id[c["id"]]["cot"]

    rejected = _jsonl(out / "rejected.jsonl")
    bad_lines = [r for r in rejected if r["kind"] == "invalid_line"]
    assert [(r["file"], r["line"]) for r in bad_lines] == [
        (str(path), n_good + 1), (str(path), n_good + 2), (str(path), n_good + 3)]
    (fail,) = [r for r in rejected if r["kind"] == "verify_failed"]
    assert fail["id"] == f"corpus-{n_good + 6}" and fail["line"] == n_good + 6
    assert "3.85" in fail["reason"] and "3.75" in fail["reason"]

    md = (out / "report.md").read_text(encoding="utf-8")
    assert report["invariant"] in md
    for cat, v in per.items():
        assert f"| {cat} | {v['kept']} | {v['verified']} | {v['train']} | {v['eval']} |" in md


def test_same_seed_same_split(corpus, tmp_path):
    path = corpus[0]
    ids = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        run([path], tmp_path / name, eval_size=30, seed=seed, progress=False)
        ids.append([h["id"] for h in _jsonl(tmp_path / name / "eval.jsonl")])
    assert ids[0] == ids[1] != ids[2]


def test_eval_size_larger_than_verified(corpus, tmp_path):
    with pytest.raises(ValueError, match="exceeds"):
        run([corpus[0]], tmp_path / "x", eval_size=10**6, progress=False)


def test_real_inputs_together(shared_data, tmp_path):
    sample = shared_data / "ascend2024_math" / "sample_dev.jsonl"
    gsm8k = shared_data / "gsm8k" / "test.jsonl"
    if not (sample.is_file() and gsm8k.is_file()):
        pytest.skip("real contest sample or GSM8K test split missing")
    report = run([sample, gsm8k], tmp_path / "real", eval_size=100, seed=0, progress=False)
    assert (report["read"], report["rejected"], report["duplicates"], report["kept"]) == (2319, 0, 0, 2319)
    assert report["verified"] == 2319
    assert report["per_category"]["word_problem"] == {"kept": 1319, "verified": 1319,
                                                      "train": 1319 - 57, "eval": 57}
    assert report["per_category"]["subtraction"]["kept"] == 170


def test_cli(corpus, tmp_path):
    helptext = subprocess.run([sys.executable, "-m", "preprocess", "--help"], cwd=REPO,
                              capture_output=True, text=True, timeout=120).stdout
    for option in ("--input", "--output-dir", "--eval-size", "--seed", "--no-progress"):
        assert option in helptext
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "preprocess", "--input", str(corpus[0]), "--output-dir", str(out),
         "--eval-size", "10", "--seed", "3", "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "read = kept + duplicates + rejected" in proc.stdout
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["eval"] == 10
    bad = subprocess.run(
        [sys.executable, "-m", "preprocess", "--input", str(tmp_path / "missing.jsonl"),
         "--output-dir", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "missing.jsonl" in bad.stderr
