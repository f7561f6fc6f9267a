"""preprocess.readers: validation with 1-based line numbers, BOM, CRLF, bad bytes."""
import json

import pytest

from preprocess.readers import read_contest_jsonl


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
    good, rejected = read_contest_jsonl(path)
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
    good, rejected = read_contest_jsonl([a, str(b)])
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
    good, rejected = read_contest_jsonl([p, e])
    assert [g["line"] for g in good] == [1] and rejected == []


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_contest_jsonl([tmp_path / "nope.jsonl"])


def test_real_sample_reads_clean(shared_data):
    path = shared_data / "ascend2024_math" / "sample_dev.jsonl"
    if not path.is_file():
        pytest.skip(f"real contest sample missing: {path}")
    good, rejected = read_contest_jsonl(path)
    assert len(good) == 1000 and rejected == []
    assert good[0]["line"] == 1 and good[-1]["line"] == 1000
