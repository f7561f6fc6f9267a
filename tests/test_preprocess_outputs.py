"""Issue 16 item 8: preprocess's six outputs appear together or not at all, under a real SIGKILL and
a real full disk (a small tmpfs); preprocess.mindrecord leaves no work directory of a killed run;
and preprocess.mindrecord's own bad input (item 3): a lone surrogate, truncated JSON."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny" / "finetune_lora_cpu.yaml"
OUTPUTS = ["conversations.json", "eval.jsonl", "items.jsonl", "rejected.jsonl", "report.json", "report.md"]


def gsm8k_file(path: Path, n: int, pad: int, start: int = 0) -> Path:
    """``n`` verifiable GSM8K records, each about ``2 * pad`` bytes."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(start, start + n):
            f.write(json.dumps({
                "question": f"Tom has {i} apples and buys 3 more. How many apples does he have? {'x' * pad}",
                "answer": f"{'He counts. ' * (pad // 11)}He has {i}+3 = <<{i}+3={i + 3}>>{i + 3} apples.\n#### {i + 3}",
            }) + "\n")
    return path


def preprocess_cmd(inp: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "preprocess", "--input", str(inp), "--output-dir", str(out),
            "--workers", "1", "--no-progress"]


def snapshot(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def kill_when(proc: subprocess.Popen, found) -> Path | None:
    """SIGKILL ``proc`` as soon as ``found()`` returns a path; None when it ended first."""
    while proc.poll() is None:
        hit = found()
        if hit:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return hit
        time.sleep(0.002)
    return None


def test_kill_during_conversations_write_leaves_the_previous_set_whole(tmp_path):
    out = tmp_path / "out"
    subprocess.run(preprocess_cmd(gsm8k_file(tmp_path / "small.jsonl", 5, 10), out), cwd=REPO, check=True)
    before = snapshot(out)
    big = gsm8k_file(tmp_path / "big.jsonl", 6000, 2000, start=100)
    proc = subprocess.Popen(preprocess_cmd(big, out), cwd=REPO, stdout=subprocess.DEVNULL)
    # The temporary conversations.json, wherever the run puts it (in out/ or a staging directory).
    hit = kill_when(proc, lambda: next(out.glob("**/.conversations.json.*.tmp"), None))
    assert hit is not None, "the run ended before conversations.json was being written"
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(out) == before  # no new items.jsonl beside the old conversations.json
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == OUTPUTS

    subprocess.run(preprocess_cmd(gsm8k_file(tmp_path / "again.jsonl", 3, 10, start=50), out), cwd=REPO,
                   check=True)
    assert hidden(out) == []  # the killed run's staging directory is gone
    assert json.loads((out / "report.json").read_text())["read"] == 3
    assert len(json.loads((out / "conversations.json").read_text())) == 3


def test_an_interrupted_commit_is_finished_first(tmp_path):
    from preprocess.atomic import finish_commit

    out = tmp_path / "out"
    subprocess.run(preprocess_cmd(gsm8k_file(tmp_path / "a.jsonl", 4, 10), out), cwd=REPO, check=True)
    # A kill between the commit rename and the last move: two new files are still in the commit dir.
    commit = out / ".preprocess-commit"
    commit.mkdir()
    (commit / "report.json").write_text('{"read": 99}')
    (commit / "report.md").write_text("new")
    assert finish_commit(out, "preprocess") is True
    assert hidden(out) == [] and (out / "report.md").read_text() == "new"
    assert finish_commit(out, "preprocess") is False


@pytest.fixture()
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root); skips when it cannot be mounted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                          text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_full_disk_is_a_clear_error_and_keeps_the_previous_set(small_disk, tmp_path):
    out = small_disk / "out"
    subprocess.run(preprocess_cmd(gsm8k_file(tmp_path / "small.jsonl", 5, 10), out), cwd=REPO, check=True)
    before = snapshot(out)
    proc = subprocess.run(preprocess_cmd(gsm8k_file(tmp_path / "big.jsonl", 400, 1000, start=100), out),
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"cannot write {out}/" in proc.stderr and "No space left on device" in proc.stderr
    assert f"the previous outputs in {out} are unchanged" in proc.stderr
    assert snapshot(out) == before and hidden(out) == []


# --------------------------------------------------------------------------- preprocess.mindrecord


def conversations_file(path: Path, n: int) -> Path:
    path.write_text(json.dumps([{"id": str(i), "conversations": [
        {"from": "human", "value": f"What is {i} plus 7? " * 20},
        {"from": "gpt", "value": f"{i} + 7 = {i + 7}. " * 20}]} for i in range(n)]), encoding="utf-8")
    return path


def mindrecord_cmd(inp: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "preprocess.mindrecord", "--input_glob", str(inp), "--config", str(TINY),
            "--seq_length", "255", "--output_file", str(output)]


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from research.llama3.tokenizer import tokenizer_from_config

    return tokenizer_from_config(str(TINY))


def test_mindrecord_kill_leaves_no_work_directory(tiny_tokenizer, tmp_path):
    from preprocess.mindrecord import convert, load_conversations
    from preprocess.templates import get_template

    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(mindrecord_cmd(conversations_file(tmp_path / "big.json", 3000), out / "t.mindrecord"),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hit = kill_when(proc, lambda: next(out.glob(".mindrecord-*/t.mindrecord*"), None))
    assert hit is not None, "the conversion ended before it wrote anything"
    assert hidden(out) != []  # what the kill left

    convert(load_conversations([str(conversations_file(tmp_path / "small.json", 3))]), tiny_tokenizer,
            get_template("vicuna_v1.1"), 255, str(out / "s.mindrecord"))
    assert hidden(out) == []
    assert sorted(p.name for p in out.iterdir()) == ["s.mindrecord", "s.mindrecord.db", "s.mindrecord.report.json"]


def test_mindrecord_lone_surrogate_is_listed_and_truncated_json_names_the_file(tiny_tokenizer, tmp_path, capsys):
    from preprocess.mindrecord import convert, load_conversations, main
    from preprocess.templates import get_template

    src = tmp_path / "conv.json"
    src.write_text(json.dumps([
        {"id": "bad", "conversations": [{"from": "human", "value": "x\ud800"}, {"from": "gpt", "value": "1"}]},
        {"id": "ok", "conversations": [{"from": "human", "value": "1+1?"}, {"from": "gpt", "value": "2"}]}]))
    report = convert(load_conversations([str(src)]), tiny_tokenizer, get_template("vicuna_v1.1"), 127,
                     str(tmp_path / "t.mindrecord"))
    assert report["records"] == 1
    assert report["skipped"] == [{"where": "conv.json[0]", "id": "bad", "reason":
                                  "conv.json[0]: lone surrogate U+D800 in conversations[0].value "
                                  "(invalid UTF-8 or an unpaired \\u escape)"}]

    cut = tmp_path / "cut.json"
    cut.write_text(src.read_text()[:60])
    with pytest.raises(ValueError, match=f"^{cut}: not JSON: .* at line 1 column"):
        list(load_conversations([str(cut)]))
    with pytest.raises(SystemExit) as exit_info:  # the CLI: a usage error naming the file, no traceback
        main(mindrecord_cmd(cut, tmp_path / "c.mindrecord")[3:])
    assert exit_info.value.code == 2 and f"error: {cut}: not JSON" in capsys.readouterr().err
