"""Issue 16 item 8: preprocess's six outputs appear together or not at all, under a real SIGKILL and
a real full disk (a small tmpfs); research.llama3.records.mindrecord leaves no work directory of a killed run;
and research.llama3.records.mindrecord's own bad input (item 3): a lone surrogate, truncated JSON."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
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
    return [sys.executable, "-m", "preprocess", "--input", str(inp), "--output_dir", str(out),
            "--workers", "1", "--no_progress"]


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

    # research.llama3.records.mindrecord reading conversations.json completes such a commit before it reads.
    commit.mkdir()
    (commit / "conversations.json").write_text('[{"id": "new", "conversations": []}]')
    from research.llama3.records.mindrecord import load_conversations

    assert [cid for _, cid, _ in load_conversations([str(out / "conversations.json")])] == ["new"]
    assert hidden(out) == []


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


# --------------------------------------------------------------------------- research.llama3.records.mindrecord


def conversations_file(path: Path, n: int) -> Path:
    path.write_text(json.dumps([{"id": str(i), "conversations": [
        {"from": "human", "value": f"What is {i} plus 7? " * 20},
        {"from": "gpt", "value": f"{i} + 7 = {i + 7}. " * 20}]} for i in range(n)]), encoding="utf-8")
    return path


def mindrecord_cmd(inp: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "research.llama3.records.mindrecord", "--input_glob", str(inp), "--config", str(TINY),
            "--seq_length", "255", "--output_file", str(output)]


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from research.llama3.tokenizers.tokenizer import tokenizer_from_config

    return tokenizer_from_config(str(TINY))


def test_mindrecord_kill_leaves_no_work_directory(tiny_tokenizer, tmp_path):
    from research.llama3.records.mindrecord import convert, load_conversations
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
    from research.llama3.records.mindrecord import convert, load_conversations, main
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


def _conv(n: int) -> dict:
    return {"id": f"c{n}", "conversations": [{"from": "human", "value": f"What is {n} plus 7?"},
                                             {"from": "gpt", "value": f"{n + 7}"}]}


def _turns(*turns) -> dict:
    return {"id": "bad", "conversations": list(turns)}


H, G = {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}
# Damage inside one conversation of a valid JSON list: that conversation is skipped and listed.
CONVERSATION_DAMAGES = {
    "not_an_object": 5, "a_string": "text", "a_list": [H, G], "missing_conversations": {"id": "bad"},
    "conversations_not_a_list": {"conversations": "q a"}, "empty_conversations": _turns(),
    "turn_not_an_object": _turns("q", G), "missing_from": _turns({"value": "q"}, G),
    "unknown_role": _turns({"from": "robot", "value": "q"}, G), "missing_value": _turns({"from": "human"}, G),
    "value_not_a_string": _turns({"from": "human", "value": 3}, G),
    "value_inf": _turns(H, {"from": "gpt", "value": 1e999}),
    "roles_not_alternating": _turns(H, H), "surrogate_in_question": _turns({"from": "human", "value": "\ud800"}, G),
    "surrogate_in_answer": _turns(H, {"from": "gpt", "value": "a\udfff"}),
}


def test_mindrecord_corpus_every_conversation_damage(tiny_tokenizer, tmp_path):
    from research.llama3.records.mindrecord import convert, load_conversations
    from preprocess.templates import get_template

    paths, n = [], 0
    for damage, bad in CONVERSATION_DAMAGES.items():
        path = tmp_path / f"{damage}.json"
        path.write_text(json.dumps([_conv(n), bad, _conv(n + 1)], indent=1))
        paths.append(str(path))
        n += 2
    # A byte-order mark, CR-only line ends and a leading system turn are no damage.
    bom = tmp_path / "bom.json"
    system = {"id": "sys", "conversations": [{"from": "system", "value": "Be brief."}, *_conv(n + 1)["conversations"]]}
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps([_conv(n), system], indent=1).replace("\n", "\r").encode())
    report = convert(load_conversations(paths + [str(bom)]), tiny_tokenizer, get_template("vicuna_v1.1"), 127,
                     str(tmp_path / "out" / "t.mindrecord"))
    assert report["records"] == report["samples"] == n + 2
    assert [e["where"] for e in report["skipped"]] == [f"{d}.json[1]" for d in CONVERSATION_DAMAGES]
    assert all(e["reason"].startswith(e["where"]) and len(e["reason"]) > len(e["where"]) + 5 for e in report["skipped"])
    assert report["truncated"] == report["dropped"] == []
    assert report["notes"] == [{"where": "bom.json[1]", "id": "sys", "reason": "leading non-human message skipped"}]


@pytest.mark.parametrize("damage, text", [
    ("truncated", '[{"id": "1", "conversations": [{"from": "human", "val'),
    ("nested", "[" * 100_000 + "]" * 100_000),  # deeper than MindSpore's recursion limit (10000)
    ("huge_integer", '[{"id": ' + "7" * 5000 + "}]"),
    ("not_a_list", '{"id": "1", "conversations": []}'),
    ("empty", ""),
])
def test_mindrecord_broken_file_is_an_error_naming_it(damage, text, tmp_path):
    from research.llama3.records.mindrecord import load_conversations

    path = tmp_path / f"{damage}.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^{path}: "):
        list(load_conversations([str(path)]))


def test_mindrecord_invalid_utf8_file_is_an_error_naming_it(tmp_path):
    from research.llama3.records.mindrecord import load_conversations

    path = tmp_path / "latin1.json"
    data = json.dumps([_conv(1)], ensure_ascii=False).replace("What", "Wh\u00e4t").encode("latin-1")
    path.write_bytes(data)
    at = data.index("\u00e4".encode("latin-1"))
    with pytest.raises(ValueError, match=f"^{path}: invalid UTF-8 at byte {at}$"):
        list(load_conversations([str(path)]))
