"""eval.logic_vote and python -m eval.logic on the real Tianchi files."""
import json

import pytest

from eval import logic as logic_cli
from eval.files import read_jsonl
from eval.logic_vote import accuracy, extract_letter, flatten, render_prompt, submission, vote

pytestmark = pytest.mark.unit


def test_extract_letter():
    assert extract_letter("分析……所以选B。\n答案是：C") == "C"
    assert extract_letter("答案：A，不是 B") == "A"
    assert extract_letter("答案是 (D)") == "D"
    assert extract_letter("<output>B</output>") == "B"
    assert extract_letter("答案是 B 吗？不对。<output>C</output>") == "C"  # the answer tag wins
    assert extract_letter("I think A is wrong, so the answer is B") == "B"
    assert extract_letter("答案是：E", n_options=4) is None  # no option E
    assert extract_letter("ABC are words; no answer here") is None
    assert extract_letter("") is None and extract_letter(None) is None


def test_vote_and_second_round_rules():
    assert vote(["A", "B", "A", None]) == ("A", True, {"A": 2, "B": 1})
    assert vote(["B", "A", "A", "B"]) == ("B", False, {"B": 2, "A": 2})  # tie: first voted
    assert vote([None, None]) == (None, False, {})


def test_flatten_prompt_and_submission_on_real_files(shared_data):
    train = read_jsonl(shared_data / "tianchi_logic/round1_train_data.jsonl")
    test = read_jsonl(shared_data / "tianchi_logic/round1_test_data.jsonl")
    qs, tq = flatten(train), flatten(test)
    assert (len(train), len(qs), len(test), len(tq)) == (500, 1421, 500, 1328)
    assert qs[0]["key"] == "round1_train_data_000#0" and qs[0]["answer"] == "D"
    assert all(q["answer"] is None for q in tq)
    prompt = render_prompt(qs[0], "baseline")
    assert qs[0]["problem"] in prompt and "\nA. le chat saute sur la lune\nB. " in prompt and "答案是：A" in prompt
    # plain/thinking: the training record's user message, in the training chat template
    from preprocess.logic import tianchi_records
    from preprocess.templates import get_template

    record = tianchi_records(train[0])[0]
    assert render_prompt(qs[0]) == record["problem"]
    vicuna = get_template("vicuna_v1.1")
    assert render_prompt(qs[0], "plain", vicuna) == vicuna.render_prompt(record["problem"])
    assert render_prompt(qs[0], "thinking").endswith("<output> 标签中给出答案（只写选项字母）。")
    rows, filled = submission(test, {q["key"]: "B" for q in tq[1:]})
    assert len(rows) == 500 and rows[0]["id"] == test[0]["id"]
    assert [len(r["questions"]) for r in rows] == [len(p["questions"]) for p in test]
    assert rows[0]["questions"][0] == {"answer": "A"} and filled == [tq[0]["key"]]
    with pytest.raises(ValueError, match="f.jsonl: problem 1: field 'id' is missing"):
        flatten([{"problem": "x", "questions": []}], where="f.jsonl: ")
    with pytest.raises(ValueError, match="f.jsonl: problem 1 \\('p1'\\): field 'questions'"):
        flatten([{"id": "p1", "problem": "x", "questions": []}], where="f.jsonl: ")
    with pytest.raises(ValueError, match=r"problem 2 \('p2'\): questions\[0\].answer 'C'"):
        flatten([train[0], {"id": "p2", "problem": "x", "questions": [{"question": "q", "options": ["a", "b"],
                                                                         "answer": "C"}]}])


def test_accuracy_per_problem_and_question():
    recs = [{"problem_id": "p", "answer": "A", "prediction": "A"},
            {"problem_id": "p", "answer": "B", "prediction": "C"},
            {"problem_id": "q", "answer": "A", "prediction": "A"}]
    acc = accuracy(recs)
    assert acc["questions"] == {"total": 3, "correct": 2, "accuracy": pytest.approx(2 / 3)}
    assert acc["problems"]["all_correct"] == 1 and acc["problems"]["accuracy"] == 0.5
    assert acc["problems"]["mean_accuracy"] == pytest.approx(0.75)


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_cli_ensemble_of_sample_files(shared_data, tmp_path, capsys):
    items = shared_data / "tianchi_logic/round1_train_data.jsonl"
    qs = flatten(read_jsonl(items, limit=10))

    def wrong(q):  # the next option letter, wrapping round: always a valid, wrong letter
        return "ABCDEFG"[("ABCDEFG".index(q["answer"]) + 1) % len(q["options"])]

    # Adapter x is right on every question, y on none; a third file breaks the x/y ties for the
    # first half only.
    a = _write(tmp_path / "x.jsonl", [{"key": q["key"], "adapter": "x", "generation": f"答案是：{q['answer']}"}
                                      for q in qs])
    b = _write(tmp_path / "y.jsonl", [{"key": q["key"], "adapter": "y",
                                       "generation": f"<output>{wrong(q)}</output>"} for q in qs])
    half = len(qs) // 2
    c = _write(tmp_path / "z.jsonl", [{"key": q["key"], "adapter": "z", "generation": f"选 {q['answer']}"}
                                      for q in qs[:half]])
    out = tmp_path / "out"
    assert logic_cli.main(["--items", str(items), "--limit", "10", "--predictions", a, b, c,
                           "--output_dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["questions"] == len(qs) and m["adapters"] == ["x", "y", "z"]
    assert m["per_adapter"]["x"]["questions"]["accuracy"] == 1.0
    assert m["per_adapter"]["y"]["questions"]["correct"] == 0
    # Ties x/y go to the first voted letter (x's, right), so the vote is right everywhere.
    assert m["ensemble"]["questions"]["correct"] == len(qs)
    assert m["no_majority_after_vote"] == len(qs) - half
    sub = read_jsonl(out / "submission.jsonl")
    assert len(sub) == 10 and sub[0]["questions"][0] == {"answer": qs[0]["answer"]}
    assert "| **vote (all)** | 100.00%" in capsys.readouterr().out
    assert (out / "accuracy.png").stat().st_size > 1000


def test_cli_greedy_draws_no_sampled_second_round(shared_data, tmp_path, tiny_hf_model_dir):
    out = tmp_path / "out"
    items = shared_data / "tianchi_logic/round1_test_data.jsonl"
    assert logic_cli.main(["--items", str(items), "--limit", "1", "--hf_model_dir", str(tiny_hf_model_dir),
                           "--device", "cpu", "--num_samples", "1", "--max_new_tokens", "3",
                           "--output_dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # The toy model writes no letter, so every question is undecided; greedy still draws no second round.
    assert m["second_round_questions"] == 0 and m["samples"] == m["questions"]
    assert {(s["round"], s["seed"]) for s in read_jsonl(out / "samples.jsonl")} == {(1, None)}


def test_cli_model_mode_self_consistency_and_second_round(shared_data, tmp_path, tiny_hf_model_dir):
    model_dir = tiny_hf_model_dir
    out = tmp_path / "out"
    items = shared_data / "tianchi_logic/round1_test_data.jsonl"
    assert logic_cli.main(["--items", str(items), "--limit", "2", "--hf_model_dir", str(model_dir),
                           "--device", "cpu", "--num_samples", "2", "--second_round", "1",
                           "--max_new_tokens", "3", "--temperature", "1.0", "--output_dir", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    n_q = m["questions"]
    # A word-level toy tokenizer writes no option letters: no votes, so every question goes to round 2.
    assert m["second_round_questions"] == n_q and m["samples"] == n_q * 3
    samples = read_jsonl(out / "samples.jsonl")
    assert [s["seed"] for s in samples[:: n_q]] == [0, 1, 2] and {s["round"] for s in samples} == {1, 2}
    assert "ensemble" not in m and m["submission_filled"] == n_q  # unlabeled test file
    sub = read_jsonl(out / "submission.jsonl")
    assert [p["id"] for p in sub] == [p["id"] for p in read_jsonl(items, limit=2)]
