"""Bad input through the whole ``python -m preprocess`` CLI in its own process (issue 16, item 3), so
that an unbounded evaluation of a GSM8K ``<<...>>`` annotation shows as a timeout, not a hung test."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def good(n: int) -> dict:
    """A GSM8K record that verifies, unique by ``n``."""
    return {"question": f"Tom has {n} apples and buys 3 more. How many apples does he have?",
            "answer": f"He has {n}+3 = <<{n}+3={n + 3}>>{n + 3} apples.\n#### {n + 3}"}


def test_item3_cli_survives_surrogate_and_gsm8k_annotation_bombs(tmp_path):
    """The whole CLI, in its own process so that an unbounded evaluation shows as a timeout."""
    path = tmp_path / "gsm.jsonl"
    lines = [good(1), {"question": "Bomb one?", "answer": "It is <<10**400=81>>81.\n#### 81"},
             {"question": "Bomb two?", "answer": "It is <<((9**1000)**1000)**1000=81>>81.\n#### 81"},
             {"question": "Broken \ud800 text?", "answer": "1 <<1+0=1>>\n#### 1"}, good(2)]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "preprocess", "--input", str(path), "--output_dir", str(out),
                           "--no_progress", "--workers", "1"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    rejected = {r["line"]: r for r in _jsonl(out / "rejected.jsonl")}
    assert sorted(rejected) == [2, 3, 4]
    assert rejected[2]["kind"] == rejected[3]["kind"] == "verify_failed"
    assert "value too large" in rejected[2]["reason"] and "value too large" in rejected[3]["reason"]
    assert rejected[4] == {"kind": "invalid_line", "file": str(path), "line": 4,
                           "reason": "lone surrogate U+D800 in question (invalid UTF-8 or an unpaired \\u escape)"}
    assert [c["id"] for c in json.loads((out / "conversations.json").read_text())] == ["gsm-1", "gsm-5"]


CONTEST = [{"problem": "计算 1 + 1 等于多少？", "solution": "1 + 1 = 2"},
           {"problem": "计算 2 + 2 等于多少？", "solution": "2 + 2 = 4"}]


def bad_inputs(tmp_path) -> dict:
    """An empty file, a blank one, a GB18030 one and one of only broken lines."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in CONTEST)
    files = {"empty": b"", "blank": b"\n  \n", "gb18030": text.encode("gb18030"), "broken": b"{\n[1,\n"}
    for name, data in files.items():
        (tmp_path / f"{name}.jsonl").write_bytes(data)
    return {name: tmp_path / f"{name}.jsonl" for name in files}


def test_no_records_fail_with_the_cause(tmp_path):
    files = bad_inputs(tmp_path)
    expected = {
        "empty": f"no records read from {files['empty']} (empty or blank)",
        "blank": f"no records read from {files['blank']} (empty or blank)",
        "gb18030": f"all 2 lines of {files['gb18030']} rejected (first: {files['gb18030']}:1: invalid UTF-8 at "
                   f"byte 13; convert the file, e.g. iconv -f GB18030 -t UTF-8), see {tmp_path / 'out'}/rejected.jsonl",
        "broken": f"all 2 lines of {files['broken']} rejected (first: {files['broken']}:1: ",
    }
    for name, path in files.items():
        proc = subprocess.run([sys.executable, "-m", "preprocess", "--input", str(path), "--output_dir",
                               str(tmp_path / "out"), "--no_progress"], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(f"python -m preprocess: error: {expected[name]}"), (name, proc.stderr)
        assert "usage:" not in proc.stderr and "verified" not in proc.stdout
        rejected = _jsonl(tmp_path / "out" / "rejected.jsonl")
        assert len(rejected) == (2 if name in ("gb18030", "broken") else 0)
