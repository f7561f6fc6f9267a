"""Record layout from the spec, with ids computed by hand: a byte-level Llama 3-format tokenizer
(every text encodes to its UTF-8 bytes; BOS 256, EOS 257, pad 258, start_header 262,
end_header 263, eot 265) makes each expected record writable from the template's text alone."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from preprocess.budget import IGNORE_INDEX
from research.llama3.records.mindrecord import convert, load_conversations
from preprocess.templates import get_template

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
BOS, EOS, PAD = 256, 257, 258
# fastchat conv_vicuna_v1_1 as MindFormers r1.1 research/llama3/conversation.py defines it
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")
M = IGNORE_INDEX


def b(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def conv(cid, *values, first="human"):
    roles = ["human", "gpt"] if first == "human" else ["gpt", "human"]
    return {"id": cid, "conversations": [{"from": roles[i % 2], "value": v} for i, v in enumerate(values)]}


@pytest.fixture(scope="module")
def tok(byte_llama3_tokenizer_model):
    from research.llama3.tokenizers.tokenizer import build_tokenizer

    return build_tokenizer({"type": "Llama3Tokenizer", "vocab_file": str(byte_llama3_tokenizer_model)})


def read(path):
    import mindspore.dataset as ds

    return [(r["input_ids"], r["labels"]) for r in ds.MindDataset(
        str(path), columns_list=["input_ids", "labels"], shuffle=False).create_dict_iterator(output_numpy=True)]


def padded(ids, labels, total):
    return ids + [PAD] * (total - len(ids)), labels + [M] * (total - len(labels))


def test_vicuna_single_and_multi_turn_by_hand(tok, tmp_path):
    p1 = f"{SYSTEM} USER: 1+1? ASSISTANT:"
    p2 = "USER: 2+2? ASSISTANT:"  # later rounds carry no system prompt
    total = 400
    report = convert([conv("one", "1+1?", "2"), conv("two", "1+1?", "2", "2+2?", "4")], tok,
                     get_template("vicuna_v1.1"), total - 1, str(tmp_path / "v.mindrecord"))
    rows = read(tmp_path / "v.mindrecord")
    ids1 = [BOS] + b(p1) + b(" 2") + [EOS]
    lab1 = [M] * (1 + len(b(p1))) + b(" 2") + [EOS]
    ids2 = ids1 + b(p2) + b(" 4") + [EOS]
    lab2 = lab1 + [M] * len(b(p2)) + b(" 4") + [EOS]
    for (got_ids, got_labels), (ids, labels) in zip(rows, [padded(ids1, lab1, total), padded(ids2, lab2, total)]):
        assert got_ids.tolist() == ids and got_labels.tolist() == labels
        assert got_ids.dtype == np.int32 and got_labels.dtype == np.int32
    assert report["records"] == 2 and report["tokens"] == len(ids1) + len(ids2)
    assert report["pad_share"] == pytest.approx(1 - (len(ids1) + len(ids2)) / (2 * total), abs=1e-4)


def test_alpaca_and_llama3_chat_by_hand(tok, tmp_path):
    convert([conv("a", "7*6", "42")], tok, get_template("alpaca"), 399, str(tmp_path / "a.mindrecord"))
    prompt = (f"{SYSTEM} USER: Below is an instruction that describes a task. Write a response that "
              "appropriately completes the request.\n\n### Instruction:\n7*6\n\n### Response: ASSISTANT:")
    ids, labels = read(tmp_path / "a.mindrecord")[0]
    assert ids.tolist()[:len(prompt.encode()) + 4] == [BOS] + b(prompt) + b(" 42")
    assert labels.tolist()[len(prompt.encode()) + 1:len(prompt.encode()) + 5] == b(" 42") + [EOS]

    convert([conv("c", "7*6", "42")], tok, get_template("llama3_chat"), 99, str(tmp_path / "c.mindrecord"))
    ids, labels = read(tmp_path / "c.mindrecord")[0]
    head = [BOS, 262] + b("user") + [263] + b("\n\n7*6") + [265, 262] + b("assistant") + [263] + b("\n\n")
    want_ids, want_labels = padded(head + b("42") + [265], [M] * len(head) + b("42") + [265], 100)
    assert ids.tolist() == want_ids and labels.tolist() == want_labels


def test_truncated_dropped_skipped_are_listed(tok, tmp_path):
    prompt_len = 1 + len(b(f"{SYSTEM} USER: q ASSISTANT:"))
    src = tmp_path / "in.json"
    src.write_text(json.dumps([
        conv("cut", "q", "12345"),
        conv("nothing_left", "q" * 5, "1"),
        {"id": "bad_value", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": 3}]},
        {"id": "bad_role", "conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}]},
        conv("lead_and_trail", "hello", "q", "9", "unanswered", first="gpt"),
    ]), encoding="utf-8")
    # room for BOS + prompt + " 12": the answer of "cut" is cut, the longer prompt leaves no answer token
    total = prompt_len + 3
    report = convert(load_conversations([str(src)]), tok, get_template("vicuna_v1.1"), total - 1,
                     str(tmp_path / "t.mindrecord"))
    assert [(e["id"], e["where"]) for e in report["truncated"]] == [("cut", "in.json[0]")]
    assert "cut to seq_length+1" in report["truncated"][0]["reason"]
    assert [e["id"] for e in report["dropped"]] == ["nothing_left"]
    assert "no answer token" in report["dropped"][0]["reason"]
    assert {e["id"]: e["reason"] for e in report["skipped"]} == {
        "bad_value": "in.json[2].conversations[1].value: missing or not a string",
        "bad_role": "in.json[3].conversations[1].from: expected 'gpt' (roles must alternate human, gpt)"}
    assert report["notes"][0]["id"] == "lead_and_trail" and "leading" in report["notes"][0]["reason"] \
        and "trailing" in report["notes"][0]["reason"]
    rows = read(tmp_path / "t.mindrecord")
    assert len(rows) == report["records"] == 2
    ids, labels = rows[0]
    assert ids.tolist()[-3:] == b(" 12") and labels.tolist()[-4:] == [M] + b(" 12")
    assert rows[1][1].tolist()[prompt_len:prompt_len + 3] == b(" 9") + [EOS]
    assert json.loads((tmp_path / "t.mindrecord.report.json").read_text())["dropped"][0]["id"] == "nothing_left"


def test_packing_keeps_every_mask_and_cuts_padding(tok, tmp_path):
    convs = [conv(str(i), f"{i}+{i}?", str(2 * i)) for i in range(9)]
    tpl, seq = get_template("vicuna_v1.1"), 511
    plain = convert(convs, tok, tpl, seq, str(tmp_path / "plain.mindrecord"))
    packed = convert(convs, tok, tpl, seq, str(tmp_path / "packed.mindrecord"), packing=True)
    rows_plain, rows_packed = read(tmp_path / "plain.mindrecord"), read(tmp_path / "packed.mindrecord")
    assert len(rows_plain) == 9 and len(rows_packed) == packed["records"] < 9
    assert sum(int((ids == BOS).sum()) for ids, _ in rows_packed) == 9

    def stream(rows):  # the non-padding tokens and their labels, record after record
        ids = np.concatenate([r[0][r[0] != PAD] for r in rows])
        labels = np.concatenate([r[1][r[0] != PAD] for r in rows])
        return ids.tolist(), labels.tolist()

    assert stream(rows_packed) == stream(rows_plain)
    assert packed["pad_share"] == packed["pad_share_packed"] == plain["pad_share_packed"] < plain["pad_share"]
    assert plain["pad_share_unpacked"] == plain["pad_share"]


def test_shards_workers_and_atomic_output(tok, tmp_path):
    convs = [conv(str(i), f"计算 {i} + 1", f"{i + 1}") for i in range(40)]
    tpl = get_template("vicuna_v1.1")
    report = convert(convs, tok, tpl, 299, str(tmp_path / "s.mindrecord"), file_partition=2, num_workers=1)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["s.mindrecord.report.json", "s.mindrecord0", "s.mindrecord0.db", "s.mindrecord1", "s.mindrecord1.db"]
    sharded = read(tmp_path / "s.mindrecord0")  # one shard's name opens the whole set
    single = convert(convs, tok, tpl, 299, str(tmp_path / "one.mindrecord"))
    assert report["records"] == single["records"] == len(sharded) == 40
    assert sorted(r[0].tobytes() for r in sharded) == sorted(r[0].tobytes() for r in read(tmp_path / "one.mindrecord"))

    with pytest.raises(ValueError, match="no records"):
        convert([conv("x", "q" * 400, "a")], tok, tpl, 63, str(tmp_path / "empty" / "e.mindrecord"))
    assert list((tmp_path / "empty").iterdir()) == []  # nothing half-written, temp dir gone


def test_cli_with_mindformers_flags(byte_llama3_tokenizer_model, tmp_path):
    help_text = subprocess.run([sys.executable, "-m", "research.llama3.records.mindrecord", "--help"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    for flag in ("--dataset_type", "--input_glob", "--model_file", "--seq_length", "--output_file",
                 "--template", "--packing", "--num_workers", "--file_partition"):
        assert flag in help_text
    (tmp_path / "c.json").write_text(json.dumps([conv(str(i), f"{i}?", str(i)) for i in range(5)]))
    out = tmp_path / "cli.mindrecord"
    proc = subprocess.run([sys.executable, "-m", "research.llama3.records.mindrecord", "--dataset_type", "qa",
                           "--input_glob", str(tmp_path / "*.json"), "--model_file", str(byte_llama3_tokenizer_model),
                           "--seq_length", "1023", "--output_file", str(out), "--packing"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "GLOG_v": "3", "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "cli.mindrecord.report.json").read_text())
    assert report["samples"] == 5 and report["records"] == 1 and report["packing"]
    assert len(read(out)) == 1


def _limit_file_size(limit):
    import resource

    def apply():  # in the child only: Python ignores SIGXFSZ, so a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.fixture()
def tmpfs(tmp_path):
    """A 40 MiB tmpfs (needs root and mount rights; skipped without them)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("limit", ["file_size", "full_disk"])
def test_writer_failure_is_one_clear_error(limit, tok, byte_llama3_tokenizer_model, tmp_path, request):
    # Records of 1,024 int32 pairs (8 KiB): 200 pass a 100 KB file-size limit, 10,000 a 40 MiB disk.
    # (MindSpore 2.x's writer crashes (SIGSEGV) instead of failing on some larger file-size limits.)
    convs = [conv(str(i), f"{i}?", str(i)) for i in range(200 if limit == "file_size" else 10000)]
    (tmp_path / "c.json").write_text(json.dumps(convs))
    out_dir = request.getfixturevalue("tmpfs") if limit == "full_disk" else tmp_path / "out"
    out = out_dir / "o.mindrecord"
    convert(convs[:3], tok, get_template("vicuna_v1.1"), 1023, str(out))
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    proc = subprocess.run([sys.executable, "-m", "research.llama3.records.mindrecord", "--input_glob", str(tmp_path / "c.json"),
                           "--model_file", str(byte_llama3_tokenizer_model), "--seq_length", "1023",
                           "--output_file", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          preexec_fn=_limit_file_size(100_000) if limit == "file_size" else None,
                          env={"PATH": "/usr/bin:/bin", "GLOG_v": "3", "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    error = next(line for line in proc.stderr.splitlines() if "error:" in line)
    assert error.startswith(f"python -m research.llama3.records.mindrecord: error: cannot write {out}: MindRecord's writer failed (")
    assert f"free in {out_dir} (a full disk or a file-size limit?); no output was replaced" in error
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before  # old output whole, no temp dir left


def test_jsonl_items_are_told_to_go_through_preprocess(shared_file, tmp_path):
    contest = shared_file("ascend2024_math/sample_dev.jsonl")
    one = tmp_path / "one.jsonl"
    one.write_text(contest.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    hint = "this is JSONL items (one JSON object a line), not conversations: run python -m preprocess first"
    with pytest.raises(ValueError, match="^" + re.escape(f"{contest}: not JSON: Extra data at line 2 column 1; {hint}")):
        list(load_conversations([str(contest)]))
    with pytest.raises(ValueError, match=re.escape(f"got dict; {hint}")):
        list(load_conversations([str(one)]))
    (tmp_path / "broken.json").write_text('[{"id": 1}] x')
    with pytest.raises(ValueError) as err:
        list(load_conversations([str(tmp_path / "broken.json")]))
    assert "preprocess" not in str(err.value)  # a list with junk after it is just broken JSON
