"""Packed records: every sample's logits and loss are what it gets alone (MindFormers' LlamaForCausalLM on CPU).

A tiny random Llama (configs/tiny, seq_length 256 so rotary positions reach the end of a real window)
runs the dense-attention path that the CPU YAMLs use; ``packed_columns`` supplies the mask exactly as
the MindRecord writes it and the Trainer passes it (dataset columns in construct's argument order).
"""
from pathlib import Path

import numpy as np
import pytest
import yaml

from preprocess.budget import IGNORE_INDEX
from research.llama3.records.mindrecord import PACKED_COLUMNS, VISIBLE, convert, packed_columns

pytestmark = pytest.mark.integration

TINY = str(Path(__file__).resolve().parents[3] / "configs" / "tiny" / "finetune_lora_cpu.yaml")
SEQ = 256
TOL = 1e-5


@pytest.fixture(scope="module")
def model():
    import mindspore as ms

    from research.llama3.checkpoint.random_init import build_model

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    ms.set_seed(0)
    cfg = yaml.safe_load(open(TINY))["model"]["model_config"]
    cfg.update(seq_length=SEQ, batch_size=1)
    return build_model(cfg)


def _samples():
    rng = np.random.default_rng(1)
    out = []
    for prompt, target in ((40, 60), (70, 25), (30, 20)):
        ids = rng.integers(5, 49000, prompt + target).astype(np.int32)
        labels = ids.copy()
        labels[:prompt] = IGNORE_INDEX
        out.append((ids, labels))
    return out


def _row(parts):
    ids = np.zeros(SEQ + 1, np.int32)  # 0: the tiny YAML's pad_token_id
    labels = np.full(SEQ + 1, IGNORE_INDEX, np.int32)
    pos = 0
    for i, lab in parts:
        ids[pos:pos + len(i)], labels[pos:pos + len(i)] = i, lab
        pos += len(i)
    return ids, labels


def _logits(model, ids, columns=None):
    import mindspore as ms

    model.set_train(False)
    mask = None if columns is None else ms.Tensor(columns["attention_mask"][None])
    out = model(ms.Tensor(ids[None, :SEQ]), attention_mask=mask)
    return out[0].asnumpy().reshape(SEQ, -1)


def _token_losses(logits, labels):
    """Cross-entropy of position t predicting labels[t + 1] (float64), NaN where not trained."""
    z = logits.astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    target = labels[1:SEQ + 1]
    out = np.full(SEQ, np.nan)
    keep = target != IGNORE_INDEX
    out[keep] = -logp[np.arange(SEQ)[keep], target[keep]]
    return out


def test_packed_columns_block_diagonal():
    cols = packed_columns([3, 2], 6)
    assert cols["position_ids"].tolist() == [0, 1, 2, 0, 1, 0]
    mask = cols["attention_mask"][0] // VISIBLE
    assert mask.tolist() == [[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                             [0, 0, 0, 1, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1]]
    assert cols["attention_mask"].shape == (1, 6, 6) and cols["attention_mask"].dtype == np.int32


def test_packed_sample_logits_and_loss_equal_alone(model):
    samples = _samples()
    packed_ids, packed_labels = _row(samples)
    columns = packed_columns([len(i) for i, _ in samples], SEQ)
    packed = _logits(model, packed_ids, columns)
    packed_loss = _token_losses(packed, packed_labels)
    start = 0
    for ids, labels in samples:
        alone_ids, alone_labels = _row([(ids, labels)])
        alone = _logits(model, alone_ids)  # MindFormers' own causal mask, no columns
        n = len(ids)
        assert np.abs(packed[start:start + n] - alone[:n]).max() <= TOL
        alone_loss = _token_losses(alone, alone_labels)[:n - 1]
        got = packed_loss[start:start + n - 1]
        assert np.array_equal(np.isnan(got), np.isnan(alone_loss))
        assert np.nanmax(np.abs(got - alone_loss)) <= TOL
        start += n
    # Without the mask the later samples see the earlier ones: the test can tell the difference.
    unmasked = _logits(model, packed_ids)
    n0 = len(samples[0][0])
    assert np.abs(unmasked[n0:n0 + 10] - packed[n0:n0 + 10]).max() > 1e-3


def test_training_loss_of_packed_record_is_token_mean_of_samples(model):
    """The scalar loss the Trainer optimizes (train mode, columns in construct's order)."""
    import mindspore as ms

    samples = _samples()
    ids, labels = _row(samples)
    columns = packed_columns([len(i) for i, _ in samples], SEQ)
    model.set_train(True)
    loss = float(model(ms.Tensor(ids[None]), ms.Tensor(labels[None]),
                       *(ms.Tensor(columns[c][None]) for c in PACKED_COLUMNS)).asnumpy().reshape(-1)[0])
    per_token = []
    for s in samples:
        alone_ids, alone_labels = _row([s])
        per_token.append(_token_losses(_logits(model, alone_ids), alone_labels))
    expected = np.nanmean(np.concatenate(per_token))
    assert abs(loss - expected) <= TOL


def test_packed_mindrecord_has_the_columns(tmp_path):
    import mindspore.dataset as ds

    from research.llama3.train.finetune import packed_records
    from research.llama3.tokenizers.tokenizer import tokenizer_from_config
    from preprocess.templates import get_template

    tok = tokenizer_from_config(TINY)
    convs = [{"id": str(i), "conversations": [{"from": "human", "value": f"{i} + {i} = ?"},
                                              {"from": "gpt", "value": str(2 * i)}]} for i in range(6)]
    out = str(tmp_path / "p.mindrecord")
    report = convert(convs, tok, get_template("vicuna_v1.1"), 128, out, packing=True)
    assert report["samples"] == 6 and report["records"] < 6
    assert packed_records(out)
    row = next(ds.MindDataset(out, shuffle=False).create_dict_iterator(output_numpy=True))
    ids = row["input_ids"]
    starts = [i for i in range(128) if ids[i] == tok.bos_id]
    assert len(starts) >= 2 and (row["position_ids"][starts] == 0).all()
    mask = row["attention_mask"][0]
    assert mask[starts[1], starts[0]] == 0 and mask[starts[1] + 1, starts[1]] == VISIBLE
    plain = str(tmp_path / "u.mindrecord")
    convert(convs, tok, get_template("vicuna_v1.1"), 128, plain)
    assert not packed_records(plain)
