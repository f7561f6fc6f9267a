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
