"""Real Llama 3 tokenizer on real contest data: our records against what MindFormers r1.1
``llama_preprocess.py --dataset_type qa`` is specified to build, derived here with HF ``tokenizers``
(loading Meta's tokenizer.json) from the script's documented rules, not from our code:

- the round text is ``"{system} USER: {q} ASSISTANT: {a}"`` (the ``</s>`` separator split away);
- ``input_ids`` = BOS + the whole round tokenized in one piece + EOS, padded with 128002;
- the masked instruction is ``len(tokenize(system USER: q ASSISTANT: ))`` with BOS/EOS added, minus
  3 (BOS, EOS and the trailing space), plus the masked BOS;
- a sample longer than seq_length + 1 is cut to seq_length + 1 tokens.
"""
import json

import numpy as np
import pytest

from preprocess.budget import IGNORE_INDEX
from research.llama3.records.encode import encode_conversation, fit_length, pad_records
from research.llama3.records.mindrecord import convert
from preprocess.templates import get_template

pytestmark = pytest.mark.integration

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")
ALPACA = ("Below is an instruction that describes a task. Write a response that appropriately completes "
          "the request.\n\n### Instruction:\n{problem}\n\n### Response:")
BOS, EOS, PAD = 128000, 128001, 128002


@pytest.fixture(scope="module")
def llama3(llama3_tokenizer_dir):
    from tokenizers import Tokenizer as HFTokenizer

    from research.llama3.tokenizers.tokenizer import build_tokenizer

    return (build_tokenizer({"type": "Llama3Tokenizer", "vocab_file": str(llama3_tokenizer_dir / "tokenizer.model")}),
            HFTokenizer.from_file(str(llama3_tokenizer_dir / "tokenizer.json")))


@pytest.fixture(scope="module")
def contest(shared_data):
    path = shared_data / "ascend2024_math" / "sample_dev.jsonl"
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def mindformers_record(hf, question, answer, total):
    """The qa-mode record per MindFormers' rules above (single round)."""
    enc = lambda text: hf.encode(text, add_special_tokens=False).ids  # noqa: E731
    round_ids = enc(f"{SYSTEM} USER: {question} ASSISTANT: {answer}")
    instruction_len = len([BOS] + enc(f"{SYSTEM} USER: {question} ASSISTANT: ") + [EOS]) - 3
    ids = [BOS] + round_ids + [EOS]
    labels = list(ids)
    labels[:1 + instruction_len] = [IGNORE_INDEX] * (1 + instruction_len)
    ids, labels = ids[:total], labels[:total]
    return ids + [PAD] * (total - len(ids)), labels + [IGNORE_INDEX] * (total - len(labels))


@pytest.mark.parametrize("template, wrap", [("vicuna_v1.1", "{problem}"), ("alpaca", ALPACA)])
def test_records_match_mindformers_qa_on_contest_data(llama3, contest, template, wrap):
    tok, hf = llama3
    tpl, total = get_template(template), 257
    statuses = []
    for item in contest:
        ids, labels = encode_conversation(tok.encode, tpl, [(item["problem"], item["solution"])], tok.bos_id, tok.eos_id)
        ids, labels, status, _ = fit_length(ids, labels, total)
        statuses.append(status)
        row_ids, row_labels = (a[0] for a in pad_records([[(ids, labels)]], total, tok.pad_id))
        want_ids, want_labels = mindformers_record(hf, wrap.replace("{problem}", item["problem"]), item["solution"], total)
        assert row_ids.tolist() == want_ids, item
        if status == "dropped":
            # MindFormers writes this sample with every label masked (nothing to learn); we drop and list it
            assert set(want_labels) == {IGNORE_INDEX}
            continue
        assert row_labels.tolist() == want_labels, item
    # the sample covers the padded and the cut case
    assert statuses.count("ok") > 900 and statuses.count("truncated") > 0


def test_real_records_written_and_read_back(llama3, contest, tmp_path):
    import mindspore.dataset as ds

    tok, hf = llama3
    convs = [{"id": str(i), "conversations": [{"from": "human", "value": it["problem"]},
                                              {"from": "gpt", "value": it["solution"]}]}
             for i, it in enumerate(contest[:300])]
    report = convert(convs, tok, get_template("vicuna_v1.1"), 256, str(tmp_path / "r.mindrecord"), packing=True)
    rows = list(ds.MindDataset(str(tmp_path / "r.mindrecord"), columns_list=["input_ids", "labels"],
                               shuffle=False).create_dict_iterator(output_numpy=True))
    assert len(rows) == report["records"] and report["samples"] + len(report["dropped"]) == 300
    assert sum(int((r["input_ids"] == BOS).sum()) for r in rows) == report["samples"]
    assert report["pad_share_packed"] < report["pad_share_unpacked"]
    first = rows[0]["input_ids"]
    n_first = int(np.flatnonzero(first == EOS)[0]) + 1
    # Records are packed longest first (first-fit decreasing), so the first sample of the first record
    # is one of the 300, not necessarily the first: it must equal that item's MindFormers record.
    assert any(first[:n_first].tolist() == mindformers_record(hf, it["problem"], it["solution"], n_first)[0]
               for it in contest[:300])
