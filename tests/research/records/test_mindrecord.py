"""Conversation JSON -> MindRecord with the embedded model's real tokenizer (SmolLM2 from GGUF), read back by MindSpore."""
from pathlib import Path

import numpy as np
import pytest

from preprocess.budget import IGNORE_INDEX
from research.llama3.records.encode import encode_conversation, fit_length, pad_records
from research.llama3.records.mindrecord import convert
from preprocess.templates import get_template

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml"


@pytest.fixture(scope="module")
def tokenizer():
    from research.llama3.tokenizers.tokenizer import tokenizer_from_config

    return tokenizer_from_config(str(TINY))


def record(tokenizer, tpl, q, a, seq_length):
    ids, labels = encode_conversation(tokenizer.encode, tpl, [(q, a)], tokenizer.bos_id, tokenizer.eos_id)
    ids, labels, status, _ = fit_length(ids, labels, seq_length + 1)
    ids2d, labels2d = pad_records([[(ids, labels)]], seq_length + 1, tokenizer.pad_id)
    return ids2d[0], labels2d[0], len(ids), status


def test_record_layout_masks_prompt_and_padding(tokenizer):
    tpl = get_template("vicuna_v1.1")
    q, a = "计算 12.50 * 2.00 等于多少？", "12.50 * 2.00 = 25.0000"
    ids, labels, n_tokens, status = record(tokenizer, tpl, q, a, seq_length=128)
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


def test_template_special_tokens_must_exist(tokenizer, tmp_path):
    conv = [{"id": "x", "conversations": [{"from": "human", "value": "1+1?"}, {"from": "gpt", "value": "2"}]}]
    with pytest.raises(ValueError, match="eot_id"):
        convert(conv, tokenizer, get_template("llama3_chat"), 64, str(tmp_path / "x.mindrecord"))
    assert not list(tmp_path.iterdir())


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
    first, first_labels, _, _ = record(tokenizer, tpl, "计算 0 + 0 等于多少？", "0 + 0 = 0", 96)
    assert rows[0]["input_ids"].tolist() == first.tolist() and rows[0]["labels"].tolist() == first_labels.tolist()
    assert all(r["input_ids"].shape == (97,) and r["labels"].dtype == np.int32 for r in rows)
