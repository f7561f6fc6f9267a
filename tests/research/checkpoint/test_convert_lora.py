"""MindFormers Llama (+ MindPet LoRA) -> transformers on tiny random models: names and logits."""
import numpy as np
import pytest
import torch

from research.llama3.checkpoint.to_hf import build_hf_model, merge_lora, save_hf_model
from research.llama3.checkpoint.weight_names import hf_to_ms_name, is_lora_name, ms_to_hf_name

pytestmark = pytest.mark.integration

def test_round_trip_of_every_lora_model_parameter_name(conv_tiny_llama):
    t = conv_tiny_llama
    dims = t.dims(tied=False)
    model = t.build(dims, lora=True)
    names = [p.name for p in model.get_parameters()]
    assert "model.layers.1.attention.wq.mindpet_delta_lora_a" in names
    assert "model.layers.1.attention.wv.mindpet_delta_lora_b" in names
    assert not any("wk.mindpet" in n or "wo.mindpet" in n for n in names)
    for name in names:
        assert hf_to_ms_name(ms_to_hf_name(name)) == name
        assert hf_to_ms_name(ms_to_hf_name(name, peft_prefix=True)) == name
    # The base names are exactly a transformers Llama's state_dict keys.
    from transformers import LlamaForCausalLM

    hf_keys = set(LlamaForCausalLM(dims.to_hf_config()).state_dict())
    assert {ms_to_hf_name(n) for n in names if not is_lora_name(n)} == hf_keys
    lora_hf = {ms_to_hf_name(n) for n in names if is_lora_name(n)}
    assert len(lora_hf) == 2 * 2 * dims.num_layers
    assert all(n.endswith((".q_proj.lora_A.weight", ".q_proj.lora_B.weight",
                           ".v_proj.lora_A.weight", ".v_proj.lora_B.weight")) for n in lora_hf)


@pytest.mark.parametrize("tied", [False, True])
def test_lora_checkpoint_merged_into_hf_matches_mindformers(conv_tiny_llama, tmp_path, tied):
    t = conv_tiny_llama
    dims = t.dims(tied)
    model = t.build(dims, lora=True, seed=1)
    ids = np.random.default_rng(2).integers(3, dims.vocab_size, size=(1, t.seq))
    expected = t.logits(model, ids)
    assert expected.shape == (1, t.seq, dims.vocab_size)

    params = list(model.get_parameters())
    assert ("lm_head.weight" in {p.name for p in params}) is not tied
    base = t.save([p for p in params if not is_lora_name(p.name)], tmp_path / "base.ckpt")
    lora = t.save([p for p in params if is_lora_name(p.name)], tmp_path / "lora.ckpt")
    full = t.save(params, tmp_path / "full.ckpt")

    hf = build_hf_model(str(base), dims, lora_ckpt=str(lora), lora_alpha=t.lora_alpha, lora_rank=t.lora_rank)
    assert not hf.training and hf.dtype == torch.float32
    assert hf.config.tie_word_embeddings is tied
    with torch.no_grad():
        got = hf(torch.from_numpy(ids)).logits.numpy()
    assert t.rel_err(got, expected) < 1e-4

    # A full-network checkpoint (base + deltas in one file) merges the same way.
    hf_full = build_hf_model(str(full), dims, lora_alpha=t.lora_alpha, lora_rank=t.lora_rank)
    with torch.no_grad():
        assert t.rel_err(hf_full(torch.from_numpy(ids)).logits.numpy(), expected) < 1e-4

    # Without the deltas the logits must differ: the test would otherwise not exercise the merge.
    hf_base = build_hf_model(str(base), dims)
    with torch.no_grad():
        assert t.rel_err(hf_base(torch.from_numpy(ids)).logits.numpy(), expected) > 1e-2

    # Saved model reloads with transformers alone.
    from transformers import AutoModelForCausalLM

    out = save_hf_model(hf, None, tmp_path / "hf")
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        np.testing.assert_allclose(reloaded(torch.from_numpy(ids)).logits.numpy(), got, rtol=0, atol=1e-5)


def test_plain_model_matches_and_pad_tokens_are_masked_keys_in_mindformers(conv_tiny_llama, conv_ms_cpu, tmp_path):
    t, ms = conv_tiny_llama, conv_ms_cpu
    dims = t.dims(tied=False)
    model = t.build(dims, lora=False, seed=3)
    ckpt = tmp_path / "plain.ckpt"
    ms.save_checkpoint(model, str(ckpt))
    hf = build_hf_model(str(ckpt), dims)

    clean = np.random.default_rng(4).integers(3, dims.vocab_size, size=(1, t.seq))
    with torch.no_grad():
        assert t.rel_err(t.logits(model, clean), hf(torch.from_numpy(clean)).logits.numpy()) < 1e-5

    # MindFormers hides tokens equal to pad_token_id as attention keys; transformers does so
    # only through attention_mask. Pinned here because SmolLM2's pad id is its eos.
    padded = clean.copy()
    padded[0, 3] = dims.pad_token_id
    got = t.logits(model, padded)
    with torch.no_grad():
        unmasked = hf(torch.from_numpy(padded)).logits.numpy()
        masked = hf(torch.from_numpy(padded), attention_mask=torch.from_numpy((padded != 0).astype(np.int64))).logits.numpy()
    assert t.rel_err(got, masked) < 1e-5
    assert t.rel_err(got[:, 4:], unmasked[:, 4:]) > 1e-3


def test_merge_lora_validates_shapes_and_pairs():
    w = {"model.layers.0.attention.wq.weight": np.ones((4, 6), np.float32)}
    a = np.full((2, 6), 0.5, np.float32)
    b = np.full((4, 2), 2.0, np.float32)
    lora = {"model.layers.0.attention.wq.mindpet_delta_lora_a": a,
            "model.layers.0.attention.wq.mindpet_delta_lora_b": b}
    merged = merge_lora(w, lora, lora_alpha=4, lora_rank=2)
    np.testing.assert_allclose(merged["model.layers.0.attention.wq.weight"], 1.0 + 2.0 * (b @ a))
    np.testing.assert_array_equal(w["model.layers.0.attention.wq.weight"], 1.0)
    with pytest.raises(ValueError, match="lora_rank=8"):
        merge_lora(w, lora, lora_alpha=16, lora_rank=8)
    with pytest.raises(ValueError, match="unpaired"):
        merge_lora(w, {"model.layers.0.attention.wq.mindpet_delta_lora_a": a}, 16, 2)
    with pytest.raises(ValueError, match="no base weight"):
        merge_lora({}, lora, 16, 2)


def test_build_hf_model_rejects_mismatched_dims(conv_tiny_llama, conv_ms_cpu, tmp_path):
    t, ms = conv_tiny_llama, conv_ms_cpu
    dims = t.dims(tied=False)
    model = t.build(dims, lora=False)
    ckpt = tmp_path / "m.ckpt"
    ms.save_checkpoint(model, str(ckpt))
    from dataclasses import replace

    with pytest.raises(ValueError, match="missing"):
        build_hf_model(str(ckpt), replace(dims, num_layers=3))
    with pytest.raises(ValueError, match="shapes"):
        build_hf_model(str(ckpt), replace(dims, intermediate_size=128))
    with pytest.raises(ValueError, match="no LoRA tensors"):
        build_hf_model(str(ckpt), dims, lora_ckpt=str(ckpt))
    with pytest.raises(FileNotFoundError):
        build_hf_model(str(tmp_path / "absent.ckpt"), dims)
