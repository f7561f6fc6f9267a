"""Conversation JSON -> MindRecord with the embedded model's real tokenizer, read back by MindSpore."""
import json
from pathlib import Path

import numpy as np
import pytest

from preprocess.mindrecord import IGNORE_INDEX, convert, encode_turn
from preprocess.templates import get_template

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml"


@pytest.fixture(scope="module")
def tokenizer():
    from research.llama3.tokenizer import tokenizer_from_config

    return tokenizer_from_config(str(TINY))


def test_record_layout_masks_prompt_and_padding(tokenizer):
    tpl = get_template("vicuna_v1.1")
    q, a = "计算 12.50 * 2.00 等于多少？", "12.50 * 2.00 = 25.0000"
    ids, labels, n_tokens, status = encode_turn(tokenizer, tpl, q, a, seq_length=128)
    assert status == "ok" and ids.dtype == np.int32 and labels.dtype == np.int32 and ids.shape == (129,)
    prompt = [tokenizer.bos_id] + tokenizer.encode(tpl.render_prompt(q))
    answer = tokenizer.encode(tpl.render_answer(a)) + [tokenizer.eos_id]
    n = len(prompt) + len(answer)
    assert n_tokens == n
    assert ids[:n].tolist() == prompt + answer
    assert (labels[: len(prompt)] == IGNORE_INDEX).all()
    assert labels[len(prompt):n].tolist() == answer
    assert tokenizer.pad_id == 0  # the YAML's pad_token_id, not the GGUF's (2, which is also EOS)
    assert (ids[n:] == 0).all() and (labels[n:] == IGNORE_INDEX).all()
    # the answer decodes back to the text it came from
    assert tokenizer.hf.decode(labels[len(prompt):n - 1]).strip() == a


def test_truncated_and_dropped_are_counted(tokenizer, tmp_path):
    tpl = get_template("vicuna_v1.1")
    convs = [
        {"id": "short", "conversations": [{"from": "human", "value": "1+1?"}, {"from": "gpt", "value": "2"}]},
        {"id": "long_answer", "conversations": [{"from": "human", "value": "count"},
                                                {"from": "gpt", "value": " ".join(["step"] * 200)}]},
        {"id": "long_prompt", "conversations": [{"from": "human", "value": "word " * 300},
                                                {"from": "gpt", "value": "x"}]},
        {"id": "bad", "conversations": [{"from": "gpt", "value": "no question"}]},
    ]
    report = convert(convs, tokenizer, tpl, 64, str(tmp_path / "t.mindrecord"))
    assert report["records"] == 2 and report["truncated"] == 1
    assert [d["id"] for d in report["dropped"]] == ["long_prompt"]
    assert [d["id"] for d in report["skipped"]] == ["bad"]
    saved = json.loads((tmp_path / "t.mindrecord.report.json").read_text())
    assert saved["records"] == 2


def test_mindspore_reads_back_every_record(tokenizer, tmp_path):
    import mindspore.dataset as ds

    tpl = get_template("vicuna_v1.1")
    convs = [{"id": str(i), "conversations": [{"from": "human", "value": f"计算 {i} + {i} 等于多少？"},
                                              {"from": "gpt", "value": f"{i} + {i} = {2 * i}"}]} for i in range(37)]
    out = tmp_path / "sub" / "train.mindrecord"
    report = convert(convs, tokenizer, tpl, 96, str(out))
    assert report["records"] == 37 and out.exists() and Path(str(out) + ".db").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".mindrecord-")]  # temp dir cleaned
    rows = list(ds.MindDataset(str(out), columns_list=["input_ids", "labels"], shuffle=False)
                .create_dict_iterator(output_numpy=True))
    assert len(rows) == 37
    first, _, _, _ = encode_turn(tokenizer, tpl, "计算 0 + 0 等于多少？", "0 + 0 = 0", 96)
    assert rows[0]["input_ids"].tolist() == first.tolist()
    assert all(r["input_ids"].shape == (97,) and r["labels"].dtype == np.int32 for r in rows)
