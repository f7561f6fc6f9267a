"""preprocess.pipeline / python -m preprocess end to end on a generated corpus plus bad lines."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from preprocess.synthesize import generate_labelled
from preprocess.pipeline import ITEM_FIELDS, run

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
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
    # The default target style, pot_cot, adds the expression-only fallback to verified computational items.
    assert all(tuple(it) in (ITEM_FIELDS, (*ITEM_FIELDS, "fallback")) for it in items)
    assert report["settings"]["target_style"] == "pot_cot" and any("fallback" in it for it in items)
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
    assert all(tuple(h) in (ITEM_FIELDS, (*ITEM_FIELDS, "fallback")) for h in held)
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
        assert (f"| {cat} | {v['read']} | {v['duplicates']} | {v['near_duplicates']} | {v['kept']} | "
                f"{v['verified']} | {v['train']} | {v['eval']} | {v['conversations']} |") in md
        assert v["read"] == v["kept"] + v["duplicates"]


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


def test_real_inputs_together(shared_file, tmp_path):
    sample = shared_file("ascend2024_math/sample_dev.jsonl")
    gsm8k = shared_file("gsm8k/test.jsonl")
    report = run([sample, gsm8k], tmp_path / "real", eval_size=100, seed=0, progress=False)
    assert (report["read"], report["rejected"], report["duplicates"], report["kept"]) == (2319, 0, 0, 2319)
    assert report["verified"] == 2319
    assert report["per_category"]["word_problem"] == {
        "read": 1319, "duplicates": 0, "near_duplicates": 0, "kept": 1319, "verified": 1319,
        "train": 1319 - 57, "eval": 57, "conversations": 1319 - 57}
    assert report["per_category"]["subtraction"]["kept"] == 170


def test_cli(corpus, tmp_path):
    helptext = subprocess.run([sys.executable, "-m", "preprocess", "--help"], cwd=REPO,
                              capture_output=True, text=True, timeout=120).stdout
    for option in ("--input", "--output_dir", "--eval_size", "--seed", "--no_progress", "--config",
                   "--format", "--workers", "--contamination", "--logic_style"):
        assert option in helptext
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "preprocess", "--input", str(corpus[0]), "--output_dir", str(out),
         "--eval_size", "10", "--seed", "3", "--no_progress"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "read = kept + duplicates + rejected" in proc.stdout
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["eval"] == 10
    bad = subprocess.run(
        [sys.executable, "-m", "preprocess", "--input", str(tmp_path / "missing.jsonl"),
         "--output_dir", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "missing.jsonl" in bad.stderr


# --- configuration: formats, logic styles, teacher, rounding, quotas, contamination, workers ---

from preprocess import pipeline as pipeline_mod  # noqa: E402
from preprocess.config import PreprocessConfig, load_config  # noqa: E402
from preprocess.logic import answer_letter  # noqa: E402


def test_workers_do_not_change_outputs(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline_mod, "_PARALLEL_MIN", 10)
    monkeypatch.setattr(pipeline_mod, "_CHUNK", 37)
    outs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        run([corpus[0]], out, eval_size=20, seed=4, progress=False, config=PreprocessConfig(workers=workers))
        outs[workers] = {name: (out / name).read_bytes() for name in OUTPUTS if name != "report.json"}
    assert outs[1] == outs[2]


def test_rounding_quotas_and_contamination(corpus, tmp_path):
    path, labelled, n_good = corpus
    divisions = [it for cat, it in labelled if cat == "division"]
    eval_file = tmp_path / "given_eval.jsonl"
    # The contamination check must see through formatting: extra spaces, full-width digits.
    leaked = [divisions[0]["problem"].replace(" ", "  "), divisions[1]["problem"]]
    eval_file.write_text("\n".join(json.dumps({"question": p, "answer": "0"}, ensure_ascii=False)
                                   for p in leaked) + "\n", encoding="utf-8")
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(
        "rounding: {division: 2}\n"
        "cot_style: classic\n"
        "quotas: {default: 0.5, division: {ratio: 1.0, upsample: 3}, english: 0}\n"
        f"contamination: [{eval_file.name}]\n", encoding="utf-8")
    report = run([path], tmp_path / "out", eval_size=0, seed=2, progress=False, config=load_config(cfg_path))
    assert report["contaminated"] == 2
    items = {it["id"]: it for it in _jsonl(tmp_path / "out" / "items.jsonl")}
    conv = json.loads((tmp_path / "out" / "conversations.json").read_text(encoding="utf-8"))
    per = report["per_category"]
    assert per["division"]["conversations"] == 3 * (per["division"]["verified"] - 2)
    assert "english" in per and per["english"]["conversations"] == 0
    assert per["addition"]["conversations"] == int(per["addition"]["verified"] * 0.5 + 0.5)
    assert sum(v["conversations"] for v in per.values()) == len(conv) == report["conversations"]
    human = {c["conversations"][0]["value"] for c in conv}
    assert divisions[0]["problem"] not in human and divisions[1]["problem"] not in human
    ids = [c["id"] for c in conv]
    assert len(set(ids)) == len(ids) and any(i.endswith("#3") for i in ids)
    for c in conv:
        it = items[c["id"].split("#")[0]]
        if it["category"] == "division":
            answer = it["answer"]
            last = c["conversations"][1]["value"].splitlines()[-1]
            rounded = last.rsplit(" = ", 1)[1]
            assert last == it["solution"].strip().replace(answer, rounded)
            assert len(rounded.partition(".")[2]) == 2 and abs(float(rounded) - float(answer)) <= 0.005 + 1e-9


def test_tianchi_with_teacher_and_thinking_style(shared_file, tmp_path):
    train = shared_file("tianchi_logic/round1_train_data.jsonl")
    test = shared_file("tianchi_logic/round1_test_data.jsonl")
    from tests.preprocess.test_preprocess_teacher import Teacher

    # Keep it small: the first 20 problems of each file.
    small_train, small_test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    small_train.write_text("\n".join(train.read_text(encoding="utf-8").splitlines()[:20]) + "\n", encoding="utf-8")
    small_test.write_text("\n".join(test.read_text(encoding="utf-8").splitlines()[:20]) + "\n", encoding="utf-8")
    answers = {}
    for line in small_train.read_text(encoding="utf-8").splitlines():
        for q in json.loads(line)["questions"]:
            answers[q["question"]] = q["answer"]

    class TianchiTeacher(Teacher):
        def reply(self, prompt):  # right on the second try, for every question it knows
            with self.lock:
                n = self.seen[prompt] = self.seen.get(prompt, 0) + 1
            right = next(a for q, a in answers.items() if q.strip() in prompt)
            letter = right if n > 1 else "ABCD"[("ABCD".index(right) + 1) % 4]
            return f"<thinking>理由 {n}</thinking><output>{letter}</output>"

    teacher = TianchiTeacher()
    try:
        cfg = PreprocessConfig(logic_style="thinking", teacher={
            "base_url": teacher.url, "model": "m", "mode": "match", "max_attempts": 3, "workers": 4,
            "cache_dir": str(tmp_path / "cache")})
        report = run([small_train, small_test], tmp_path / "out", progress=False, config=cfg)
    finally:
        teacher.server.shutdown()
        teacher.server.server_close()
    n_train = sum(len(json.loads(l)["questions"]) for l in small_train.read_text(encoding="utf-8").splitlines())
    n_test = sum(len(json.loads(l)["questions"]) for l in small_test.read_text(encoding="utf-8").splitlines())
    assert report["read"] == n_train + n_test and report["rejected"] == 0
    assert report["verified"] == n_train and report["verify_failed"] == n_test
    assert report["teacher"] == {"matched": n_train, "rationale": 0, "failed": 0, "errors": 0,
                                 "requests": 2 * n_train}
    assert len(teacher.requests) == 2 * n_train
    assert (f"Teacher rationales: {n_train} matched, 0 from the given answer, 0 failed, 0 request errors"
            in (tmp_path / "out" / "report.md").read_text(encoding="utf-8"))
    items = _jsonl(tmp_path / "out" / "items.jsonl")
    assert items[0]["id"] == "train-1.q1" and items[0]["logic"]["problem_id"] == "round1_train_data_000"
    conv = json.loads((tmp_path / "out" / "conversations.json").read_text(encoding="utf-8"))
    assert len(conv) == n_train
    for c, it in zip(conv, items):
        human, gpt = (t["value"] for t in c["conversations"])
        assert "<thinking>" in human and gpt.startswith("<thinking>\n理由 2\n</thinking>")
        assert answer_letter(gpt) == it["answer"] == it["solution"]
    failures = [r for r in _jsonl(tmp_path / "out" / "rejected.jsonl") if r["kind"] == "verify_failed"]
    assert len(failures) == n_test and {f["reason"] for f in failures} == {
        "no reference answer given (test-set question)"}


def test_cli_config_and_options(corpus, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("eval_size: 5\nseed: 1\nquotas: {default: 0.5}\n", encoding="utf-8")
    out = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "preprocess", "--input", str(corpus[0]), "--output_dir", str(out),
         "--config", str(cfg), "--eval_size", "7", "--no_progress"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["eval"] == 7 and report["seed"] == 1  # the flag overrides, the file fills in
    assert report["conversations"] < report["verified"] - 7
    cfg.write_text("quotas: {default: 2.0}\n", encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "preprocess", "--input", str(corpus[0]), "--output_dir",
                          str(out), "--config", str(cfg)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "c.yaml" in bad.stderr and "ratio" in bad.stderr


def test_tianchi_hold_out_by_problem_and_context(shared_file, tmp_path):
    train = shared_file("tianchi_logic/round1_train_data.jsonl")
    report = run([train], tmp_path / "out", eval_size=100, seed=0, progress=False)
    held = _jsonl(tmp_path / "out" / "eval.jsonl")
    items = _jsonl(tmp_path / "out" / "items.jsonl")
    conv = json.loads((tmp_path / "out" / "conversations.json").read_text(encoding="utf-8"))
    held_ids = {it["id"] for it in held}
    held_problems = {it["logic"]["problem_id"] for it in held}
    trained = {c["id"] for c in conv}
    train_problems = {it["logic"]["problem_id"] for it in items if it["id"] in trained}
    assert report["eval"] == len(held) == 100 and held_problems.isdisjoint(train_problems)
    # Whole problems: every sub-question of a held-out problem is held out.
    assert {it["id"] for it in items if it["logic"]["problem_id"] in held_problems} == held_ids
    assert len(trained) == report["conversations"] == 1421 - 100 - report["contaminated"]

    # In round 1 one context is given under three ids; name one copy as contamination.
    by_context = {}
    for line in train.read_text(encoding="utf-8").splitlines():
        by_context.setdefault(json.loads(line)["problem"], []).append(line)
    twins = next(lines for lines in by_context.values() if len(lines) > 1)
    given = tmp_path / "given_eval.jsonl"
    given.write_text(twins[0] + "\n", encoding="utf-8")
    report = run([train], tmp_path / "out2", eval_size=0, seed=0, progress=False,
                 config=PreprocessConfig(contamination=(str(given),)))
    n_twin = sum(len(json.loads(line)["questions"]) for line in twins)
    assert len(twins) == 3
    assert report["contaminated"] == n_twin  # the copy's own sub-questions and its twins', by context
    assert report["conversations"] == 1421 - n_twin
