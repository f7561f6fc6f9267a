"""MindFormers Llama (+ MindPet LoRA) -> transformers on tiny random models: names and logits."""
import numpy as np
import pytest
import torch

from research.llama3.model_config import LlamaDims
from research.llama3.to_hf import build_hf_model, merge_lora, save_hf_model
from research.llama3.weight_names import hf_to_ms_name, is_lora_name, ms_to_hf_name

SEQ = 8
LORA_RANK, LORA_ALPHA = 8, 24


def tiny_dims(tied):
    return LlamaDims(
        vocab_size=64, hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, intermediate_size=96,
        rms_norm_eps=1e-5, theta=10000.0, max_position=128, tie_word_embeddings=tied,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )


def build_mindformers(dims, lora, seed=0, pad_token_id=None):
    """A float32 CPU MindFormers LlamaForCausalLM (optionally LoRA on wq/wv) with random nonzero params."""
    import mindspore as ms
    from mindformers.models.llama import LlamaConfig, LlamaForCausalLM
    from mindformers.pet import LoraConfig
    from mindformers.pet.pet_model import get_pet_model

    config = LlamaConfig(
        batch_size=1, seq_length=SEQ,
        compute_dtype="float32", layernorm_compute_type="float32", softmax_compute_type="float32",
        rotary_dtype="float32", param_init_type="float32",
        use_flash_attention=False, fused_rms_norm=False, use_rope_slice=True,
        **dims.to_mindformers_kwargs(pad_token_id=pad_token_id),
    )
    model = LlamaForCausalLM(config)
    if lora:
        model = get_pet_model(model, LoraConfig(
            lora_rank=LORA_RANK, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=".*wq|.*wv"))
    rng = np.random.default_rng(seed)
    for param in model.get_parameters():
        # LoRA B starts at zero; random values make the delta (and its scaling) matter.
        value = rng.normal(0.0, 0.2, param.shape) + (1.0 if "norm" in param.name else 0.0)
        param.set_data(ms.Tensor(value.astype(np.float32)))
    model.set_train(False)
    return model


def mindformers_logits(model, ids):
    import mindspore as ms

    out = model(ms.Tensor(ids.astype(np.int32)))
    # Eval mode (no RUN_MODE=predict) returns (logits [batch, seq, vocab], tokens, input_mask).
    assert isinstance(out, tuple) and len(out) == 3
    return out[0].asnumpy()


def save_params(ms, params, path):
    ms.save_checkpoint([{"name": p.name, "data": p.data} for p in params], str(path))
    return path


def rel_err(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_round_trip_of_every_lora_model_parameter_name(conv_ms_cpu):
    dims = tiny_dims(tied=False)
    model = build_mindformers(dims, lora=True)
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
def test_lora_checkpoint_merged_into_hf_matches_mindformers(conv_ms_cpu, tmp_path, tied):
    ms = conv_ms_cpu
    dims = tiny_dims(tied)
    model = build_mindformers(dims, lora=True, seed=1)
    ids = np.random.default_rng(2).integers(3, dims.vocab_size, size=(1, SEQ))
    expected = mindformers_logits(model, ids)
    assert expected.shape == (1, SEQ, dims.vocab_size)

    params = list(model.get_parameters())
    assert ("lm_head.weight" in {p.name for p in params}) is not tied
    base = save_params(ms, [p for p in params if not is_lora_name(p.name)], tmp_path / "base.ckpt")
    lora = save_params(ms, [p for p in params if is_lora_name(p.name)], tmp_path / "lora.ckpt")
    full = save_params(ms, params, tmp_path / "full.ckpt")

    hf = build_hf_model(str(base), dims, lora_ckpt=str(lora), lora_alpha=LORA_ALPHA, lora_rank=LORA_RANK)
    assert not hf.training and hf.dtype == torch.float32
    assert hf.config.tie_word_embeddings is tied
    with torch.no_grad():
        got = hf(torch.from_numpy(ids)).logits.numpy()
    assert rel_err(got, expected) < 1e-4

    # A full-network checkpoint (base + deltas in one file) merges the same way.
    hf_full = build_hf_model(str(full), dims, lora_alpha=LORA_ALPHA, lora_rank=LORA_RANK)
    with torch.no_grad():
        assert rel_err(hf_full(torch.from_numpy(ids)).logits.numpy(), expected) < 1e-4

    # Without the deltas the logits must differ: the test would otherwise not exercise the merge.
    hf_base = build_hf_model(str(base), dims)
    with torch.no_grad():
        assert rel_err(hf_base(torch.from_numpy(ids)).logits.numpy(), expected) > 1e-2

    # Saved model reloads with transformers alone.
    from transformers import AutoModelForCausalLM

    out = save_hf_model(hf, None, tmp_path / "hf")
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        np.testing.assert_allclose(reloaded(torch.from_numpy(ids)).logits.numpy(), got, rtol=0, atol=1e-5)


def test_plain_model_matches_and_pad_tokens_are_masked_keys_in_mindformers(conv_ms_cpu, tmp_path):
    ms = conv_ms_cpu
    dims = tiny_dims(tied=False)
    model = build_mindformers(dims, lora=False, seed=3)
    ckpt = tmp_path / "plain.ckpt"
    ms.save_checkpoint(model, str(ckpt))
    hf = build_hf_model(str(ckpt), dims)

    clean = np.random.default_rng(4).integers(3, dims.vocab_size, size=(1, SEQ))
    with torch.no_grad():
        assert rel_err(mindformers_logits(model, clean), hf(torch.from_numpy(clean)).logits.numpy()) < 1e-5

    # MindFormers hides tokens equal to pad_token_id as attention keys; transformers does so
    # only through attention_mask. Pinned here because SmolLM2's pad id is its eos.
    padded = clean.copy()
    padded[0, 3] = dims.pad_token_id
    got = mindformers_logits(model, padded)
    with torch.no_grad():
        unmasked = hf(torch.from_numpy(padded)).logits.numpy()
        masked = hf(torch.from_numpy(padded), attention_mask=torch.from_numpy((padded != 0).astype(np.int64))).logits.numpy()
    assert rel_err(got, masked) < 1e-5
    assert rel_err(got[:, 4:], unmasked[:, 4:]) > 1e-3


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


def test_build_hf_model_rejects_mismatched_dims(conv_ms_cpu, tmp_path):
    ms = conv_ms_cpu
    dims = tiny_dims(tied=False)
    model = build_mindformers(dims, lora=False)
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
