"""preprocess.readers: validation with 1-based line numbers, BOM, CRLF, bad bytes."""
import json

import pytest

from preprocess.readers import read_records

pytestmark = pytest.mark.unit


def _line(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def test_mixed_file(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        b"\xef\xbb\xbf" + _line({"problem": "计算 1.00 + 2.00 等于多少？", "solution": "1.00 + 2.00 = 3.00"}),  # 1 BOM
        b'{"problem": "broken", ',                                                  # 2 bad JSON
        _line({"problem": "x"}),                                                    # 3 no solution
        b"",                                                                        # 4 blank: skipped
        _line({"problem": "   ", "solution": "1"}),                                 # 5 empty problem
        _line({"problem": "ok 2", "solution": "2"}),                                # 6 good
        b"   \t",                                                                   # 7 whitespace only
        _line(["problem", "solution"]),                                             # 8 not an object
        _line({"problem": 5, "solution": "5"}),                                     # 9 not a string
        b'{"problem": "caf\xe9", "solution": "1"}',                                 # 10 invalid UTF-8
        _line({"problem": "ok 3", "solution": "多\n行"}),                           # 11 good, last line
    ]
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    good, rejected = read_records(path)
    assert [(g["line"], g["problem"], g["solution"]) for g in good] == [
        (1, "计算 1.00 + 2.00 等于多少？", "1.00 + 2.00 = 3.00"),
        (6, "ok 2", "2"),
        (11, "ok 3", "多\n行"),
    ]
    assert all(g["file"] == str(path) for g in good + rejected)
    got = {r["line"]: r["reason"] for r in rejected}
    assert sorted(got) == [2, 3, 5, 8, 9, 10]
    assert got[2].startswith("not JSON")
    assert got[3] == "missing field 'solution'"
    assert got[5] == "field 'problem' is empty"
    assert got[8] == "not a JSON object (got list)"
    assert got[9] == "field 'problem' is not a string (got int)"
    assert got[10].startswith("invalid UTF-8")


def test_several_files_and_gsm8k_schema(tmp_path):
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text(json.dumps({"problem": "p", "solution": "s"}) + "\n", encoding="utf-8")
    b.write_text(
        "\n" + json.dumps({"question": "How many?", "answer": "2+2=<<2+2=4>>4\n#### 4"}) + "\n"
        + json.dumps({"question": "q", "solution": "s"}) + "\n",  # mixed schemas: not accepted
        encoding="utf-8",
    )
    good, rejected = read_records([a, str(b)])
    assert [(g["file"], g["line"], g["problem"]) for g in good] == [
        (str(a), 1, "p"), (str(b), 2, "How many?"),
    ]
    assert good[1]["solution"].endswith("#### 4")
    assert rejected == [{"file": str(b), "line": 3, "reason": "missing field 'problem'"}]


def test_no_trailing_newline_and_empty_file(tmp_path):
    p = tmp_path / "last.jsonl"
    p.write_text(json.dumps({"problem": "p", "solution": "s"}), encoding="utf-8")
    e = tmp_path / "empty.jsonl"
    e.write_bytes(b"")
    good, rejected = read_records([p, e])
    assert [g["line"] for g in good] == [1] and rejected == []


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_records([tmp_path / "nope.jsonl"])


def test_real_sample_reads_clean(shared_file):
    path = shared_file("ascend2024_math/sample_dev.jsonl")
    good, rejected = read_records(path)
    assert len(good) == 1000 and rejected == []
    assert good[0]["line"] == 1 and good[-1]["line"] == 1000


# --- formats beyond the contest's: detection, override, JSON arrays, Tianchi ---

from preprocess.readers import FORMATS, detect_format  # noqa: E402


def test_detect_format_from_keys():
    assert detect_format({"problem": "p", "solution": "s"}) == "contest"
    assert detect_format({"id": "x", "problem": "p", "questions": []}) == "tianchi"
    assert detect_format({"question": "q", "answer": "a"}) == "gsm8k"
    assert detect_format({"instruction": "i", "input": "", "output": "o"}) == "alpaca"
    assert detect_format({"conversations": []}) == "fastchat"
    assert detect_format({"instruction": "i"}) == "alpaca"  # most keys present wins
    assert set(FORMATS) == {"contest", "tianchi", "gsm8k", "alpaca", "fastchat"}


def test_alpaca_and_fastchat_json_arrays(tmp_path):
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([
        {"instruction": "Add.", "input": "2 + 3", "output": "5"},
        {"instruction": "Say hi.", "input": "", "output": "hi"},
        {"instruction": "", "input": "x", "output": "y"},
        {"instruction": "No output"},
    ], indent=2), encoding="utf-8")
    fastchat = tmp_path / "chat.json"
    fastchat.write_text(json.dumps([
        {"id": "1", "conversations": [{"from": "human", "value": "1+1?"}, {"from": "gpt", "value": "2"}]},
        {"id": "2", "conversations": [{"from": "gpt", "value": "only me"}]},
        {"id": "3", "conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ]), encoding="utf-8")
    good, rejected = read_records([alpaca, fastchat])
    assert [(g["format"], g["problem"], g["solution"]) for g in good] == [
        ("alpaca", "Add.\n\n2 + 3", "5"), ("alpaca", "Say hi.", "hi"),
        ("fastchat", "1+1?", "2"), ("fastchat", "q", "a")]
    # indent=2: element k starts on line 2 + 5 * k (1 "[" line, then 5 lines per object)
    assert [g["line"] for g in good[:2]] == [2, 7]
    assert [(r["file"], r["line"]) for r in rejected] == [
        (str(alpaca), 12), (str(alpaca), 17), (str(fastchat), 1)]
    assert rejected[0]["reason"] == "field 'instruction' is empty"
    assert rejected[1]["reason"] == "missing field 'output'"
    assert "no user turn followed by an assistant turn" in rejected[2]["reason"]


def test_broken_json_array_keeps_elements_before_the_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n{"problem": "p", "solution": "s"},\n{"problem": "q", "solu\n', encoding="utf-8")
    good, rejected = read_records(path)
    assert [g["line"] for g in good] == [2]
    assert len(rejected) == 1 and rejected[0]["line"] == 3 and rejected[0]["reason"].startswith("not JSON")


def test_format_override_validates_every_line_against_it(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps({"problem": "p", "solution": "s"}) + "\n"
                    + json.dumps({"question": "q", "answer": "1\n#### 1"}) + "\n", encoding="utf-8")
    good, rejected = read_records(path, fmt="gsm8k")
    assert [g["problem"] for g in good] == ["q"]
    assert rejected == [{"file": str(path), "line": 1, "reason": "missing field 'question'"}]
    with pytest.raises(ValueError, match="unknown format"):
        read_records(path, fmt="csv")


def test_tianchi_bad_questions_are_rejected_with_reason(tmp_path):
    path = tmp_path / "logic.jsonl"
    ok_q = {"question": "选择题 1：谁？", "options": ["甲", "乙"], "answer": "B"}
    rows = [
        {"id": "p0", "problem": "题干", "questions": [ok_q, dict(ok_q, answer=None)]},
        {"id": "p1", "problem": "题干", "questions": [dict(ok_q, answer="C")]},
        {"id": "p2", "problem": "题干", "questions": [dict(ok_q, options=["only one"])]},
        {"id": "p3", "problem": "题干", "questions": []},
        {"id": "p4", "problem": "题干", "questions": [ok_q, {k: v for k, v in ok_q.items() if k != "answer"}]},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    good, rejected = read_records(path)
    assert {r["line"]: r["reason"] for r in rejected} == {
        1: "questions[1].answer is not a string",
        2: "questions[0].answer 'C' is not one of the option letters",
        3: "questions[0].options must be a list of 2 to 26 strings",
        4: "field 'questions' is not a non-empty list",
    }
    assert [(g["line"], g["logic"]["question_index"], g["solution"]) for g in good] == [(5, 0, "B"), (5, 1, "")]


def test_real_tianchi_files(shared_file):
    train = shared_file("tianchi_logic/round1_train_data.jsonl")
    test = shared_file("tianchi_logic/round1_test_data.jsonl")
    good, rejected = read_records([train, test])
    assert rejected == []
    by_file = {str(train): [], str(test): []}
    for g in good:
        by_file[g["file"]].append(g)
    assert len(by_file[str(train)]) == 1421 and len(by_file[str(test)]) == 1328
    assert all(g["solution"] in "ABCDEFGH" and g["solution"] for g in by_file[str(train)])
    assert all(g["solution"] == "" for g in by_file[str(test)])
    first = by_file[str(train)][0]
    assert first["format"] == "tianchi" and first["line"] == 1
    assert first["logic"]["problem_id"] == "round1_train_data_000"
    assert first["logic"]["question_index"] == 0 and first["solution"] == "D"
    assert first["problem"].endswith("D. le chat sauts sur le lune")
    assert len({g["logic"]["problem_id"] for g in by_file[str(train)]}) == 500
