"""python -m eval.math --predictions with bad prediction files: clear errors, warnings with counts,
bad lines rejected with file, line and reason (issue 16 item 9)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval import math as math_cli
from eval.predictions import read_predictions
from preprocess.cli import run_main

pytestmark = pytest.mark.integration  # each test runs the eval.math CLI as a process

ROOT = Path(__file__).resolve().parents[2]
ITEMS = [{"id": i, "category": "c", "problem": f"{n}+0?", "answer": str(n)} for n, i in enumerate("abc", 1)]


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _run(tmp_path, rows, items=ITEMS):
    items_file = _jsonl(tmp_path / "items.jsonl", items)
    preds = tmp_path / "preds.jsonl"
    if isinstance(rows, bytes):
        preds.write_bytes(rows)
    else:
        _jsonl(preds, rows)
    proc = subprocess.run([sys.executable, "-m", "eval.math", "--items", items_file, "--predictions", str(preds),
                           "--output_dir", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    return proc, str(preds)


@pytest.mark.parametrize("rows,message", [
    ([], "no predictions (the file is empty)"),
    (["", "  "], "no predictions (the file is empty)"),
    ([{"id": "x", "generation": "1"}, {"id": "y", "generation": "2"}],
     "none of its 2 prediction ids matches one of the 3 items of"),
    ([{"id": "a"}, 5], "none of its 2 lines is a usable prediction"),
])
def test_no_usable_prediction_is_an_error(tmp_path, rows, message):
    proc, preds = _run(tmp_path, rows)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"error: {preds}: {message}" in proc.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_bad_lines_rejected_with_file_line_reason_good_ones_graded(tmp_path):
    rows = [
        {"id": "a", "generation": "answer 7"},               # 1: graded, wrong
        {"id": "b", "generation": 5},                        # 2: number
        ["b", "b"],                                          # 3: not an object
        {"id": "b", "generation": ["b"]},                    # 4: list
        {"id": "c"},                                         # 5: generation missing
        {"generation": "c"},                                 # 6: id missing
        "{not json",                                         # 7
        {"id": "b", "generation": "so b = 2"},               # 8: graded, right
        {"id": "b", "generation": "b again"},                # 9: duplicate
        {"id": None, "generation": "x"},                     # 10: id null
        "7" * 5000,                                          # 11: 5,000-digit integer
        '{"id": "c", "generation": "\\ud800"}',              # 12: lone surrogate
        {"id": "zz", "generation": "no such item"},          # 13: matches no item
    ]
    proc, preds = _run(tmp_path, rows)
    assert proc.returncode == 0, proc.stderr
    expected = {
        2: "field 'generation' must be a string, got number",
        3: "not a JSON object (a JSON array)",
        4: "field 'generation' must be a string, got array",
        5: "field 'generation' missing (keys: ['id'])",
        6: "field 'id' missing (keys: ['generation'])",
        7: "not JSON: Expecting property name enclosed in double quotes at column 2",
        9: "duplicate id 'b' (first on line 8, which is graded)",
        10: "field 'id' must be a string or integer, got null",
        11: "not JSON: Exceeds the limit (4300 digits) for integer string conversion",
        12: "lone surrogate U+D800 in generation (invalid UTF-8 or an unpaired \\u escape)",
    }
    for line, reason in expected.items():
        assert f"warning: {preds}:{line}: {reason}" in proc.stderr, (line, proc.stderr)
    assert "TypeError" not in proc.stderr and "Traceback" not in proc.stderr
    assert (f"warning: {preds}: 2 of 3 items have a prediction (1 count as missing); 1 predictions match no item; "
            f"10 lines rejected") in proc.stderr
    out = tmp_path / "out"
    rejected = [json.loads(x) for x in (out / "rejected_predictions.jsonl").read_text().splitlines()]
    assert [(r["file"], r["line"]) for r in rejected] == [(preds, n) for n in sorted(expected)]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["source"] == {"predictions": preds, "prediction_lines": 13, "rejected_lines": 10, "matched": 2,
                                 "unmatched_predictions": 1}
    assert metrics["overall"] == {"total": 3, "correct": 1, "accuracy": pytest.approx(1 / 3)}
    assert metrics["missing"] == 1


def test_invalid_utf8_line_rejected(tmp_path):
    data = b'{"id": "a", "generation": "= a"}\n{"id": "b", "generation": "\xff"}\n'
    proc, preds = _run(tmp_path, data)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {preds}:2: invalid UTF-8 at byte 27" in proc.stderr


def test_full_match_prints_no_warning(tmp_path):
    proc, _ = _run(tmp_path, [{"id": i, "generation": f"= {n}"} for n, i in enumerate("abc", 1)])
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    assert (tmp_path / "out" / "rejected_predictions.jsonl").read_text() == ""


def test_integer_ids_match_string_ids(tmp_path):
    items = [{"id": n, "problem": "p", "answer": str(n)} for n in (1, 2)]
    proc, _ = _run(tmp_path, [{"id": "1", "generation": "1"}, {"id": 2, "generation": "2"}], items=items)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr


def test_reader_counts(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 1, "generation": "x"}\n\n3\n', encoding="utf-8")
    read = read_predictions(path)
    assert (read.lines, [r["id"] for r in read.rows], [r["line"] for r in read.rejected]) == (2, [1], [3])


def test_eval_base_uses_the_same_checks(tmp_path, capsys):
    from eval import base as base_cli

    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [
        {"context": "Paris is in France.", "qas": [{"id": "q1", "question": "Where?", "answers": [{"text": "France"}]}]},
        {"context": "Rome is in Italy.", "qas": [{"id": "q2", "question": "Where?", "answers": [{"text": "Italy"}]}]},
    ]}]}), encoding="utf-8")
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": "zz", "generation": "France"}])
    assert run_main(base_cli.main, ["--squad", str(squad), "--predictions", preds, "--output_dir", str(tmp_path / "o")]) == 2
    assert f"{preds}: none of its 1 prediction ids matches one of the 2 items of {squad}" in capsys.readouterr().err
    preds = _jsonl(tmp_path / "p.jsonl", [{"id": "q1", "generation": "France"}, {"id": "q2", "generation": 3}])
    assert base_cli.main(["--squad", str(squad), "--predictions", preds, "--output_dir", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert f"{preds}:2: field 'generation' must be a string, got number; line rejected" in err
    assert "1 of 2 items have a prediction (1 count as missing)" in err
