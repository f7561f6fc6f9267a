"""Qwen2 family: tiny random Qwen2 models made by transformers itself, converted into MindFormers' Llama
(``qkv_has_bias``) and back; logits agree both ways, with LoRA merged, and from a GGUF written by gguf-py."""
import json

import numpy as np
import pytest
import torch

from research.llama3.checkpoint.convert_gguf import read_gguf
from research.llama3.checkpoint.convert_hf import convert_mindformers_to_hf, main, read_hf_checkpoint
from research.llama3.checkpoint.qwen2 import model_family
from research.llama3.checkpoint.to_hf import build_hf_model
from research.llama3.checkpoint.weight_names import hf_to_ms_name, is_lora_name, ms_to_hf_name
from tests.fixtures.tiny_qwen2 import write_qwen2_gguf

pytestmark = pytest.mark.integration


def random_qwen2(t, seed, tied):
    """A transformers Qwen2ForCausalLM (the family's own config class and defaults: theta 1e6, eps 1e-6)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=tied, use_sliding_window=False,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return t.randomize_hf(Qwen2ForCausalLM(config), seed)


def load_into_mindformers(t, dims, ckpt):
    import mindspore as ms

    model = t.build(dims, lora=False)
    not_loaded, unused = ms.load_param_into_net(model, ms.load_checkpoint(str(ckpt)))
    assert not not_loaded and not unused
    return model


def hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.from_numpy(ids)).logits.numpy()


@pytest.mark.parametrize("tied", [False, True])
def test_qwen2_hf_to_mindformers_and_back_keeps_logits(conv_tiny_llama, tmp_path, tied):
    t = conv_tiny_llama
    hf = random_qwen2(t, seed=11, tied=tied)
    hf.save_pretrained(tmp_path / "hf", safe_serialization=True)
    assert model_family(tmp_path / "hf") == "qwen2"
    ids = np.random.default_rng(12).integers(3, 64, size=(1, t.seq))
    expected = hf_logits(hf, ids)

    assert main(["to_mindformers", "--hf_dir", str(tmp_path / "hf"), "--output", str(tmp_path / "base.ckpt")]) == 0
    _, dims = read_hf_checkpoint(tmp_path / "hf")
    assert (dims.family, dims.qkv_has_bias, dims.theta, dims.rms_norm_eps) == ("qwen2", True, 1e6, 1e-6)
    assert dims.tie_word_embeddings is tied
    kwargs = dims.to_mindformers_kwargs()
    assert kwargs["qkv_has_bias"] is True and kwargs["theta"] == 1e6
    ms_model = load_into_mindformers(t, dims, tmp_path / "base.ckpt")
    assert t.rel_err(t.logits(ms_model, ids), expected) < 1e-5

    convert_mindformers_to_hf(tmp_path / "base.ckpt", dims, tmp_path / "back")
    from transformers import AutoModelForCausalLM

    back = AutoModelForCausalLM.from_pretrained(tmp_path / "back", dtype=torch.float32).eval()
    assert type(back).__name__ == "Qwen2ForCausalLM" and back.config.tie_word_embeddings is tied
    assert t.rel_err(hf_logits(back, ids), expected) < 1e-5
    for name, value in hf.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name


def test_qwen2_lora_merged_into_hf_matches_mindformers(conv_tiny_llama, tmp_path):
    t = conv_tiny_llama
    _, dims = read_hf_checkpoint(_saved(random_qwen2(t, seed=13, tied=False), tmp_path / "hf"))
    model = t.build(dims, lora=True, seed=14)
    trainable = [p.name for p in model.trainable_params()]
    # mindpet adapts wq/wv and freezes everything else, the q/k/v biases included.
    assert trainable and all(is_lora_name(n) for n in trainable)
    assert any(p.name == "model.layers.0.attention.wq.bias" for p in model.get_parameters())
    base, lora = t.save_split(model, tmp_path)
    ids = np.random.default_rng(15).integers(3, 64, size=(1, t.seq))
    expected = t.logits(model, ids)

    merged = build_hf_model(str(base), dims, lora_ckpt=str(lora), lora_alpha=t.lora_alpha, lora_rank=t.lora_rank)
    assert type(merged).__name__ == "Qwen2ForCausalLM"
    assert t.rel_err(hf_logits(merged, ids), expected) < 1e-5
    unmerged = build_hf_model(str(base), dims)
    assert t.rel_err(hf_logits(unmerged, ids), expected) > 1e-2


def test_bias_names_map_for_qkv_only():
    for ms_name, hf_name in (("model.layers.3.attention.wq.bias", "model.layers.3.self_attn.q_proj.bias"),
                             ("model.layers.0.attention.wv.bias", "model.layers.0.self_attn.v_proj.bias")):
        assert ms_to_hf_name(ms_name) == hf_name and hf_to_ms_name(hf_name) == ms_name
    for bad in ("model.layers.0.attention.wo.bias", "model.layers.0.feed_forward.w1.bias",
                "model.layers.0.attention_norm.bias"):
        with pytest.raises(ValueError, match="unmapped"):
            ms_to_hf_name(bad)
    with pytest.raises(ValueError, match="unmapped"):
        hf_to_ms_name("model.layers.0.self_attn.o_proj.bias")


def _saved(model, directory):
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def test_qwen2_gguf_keeps_biases_and_unpermuted_rows(conv_tiny_llama, tmp_path):
    t = conv_tiny_llama
    hf = random_qwen2(t, seed=16, tied=False)
    path = write_qwen2_gguf(hf, tmp_path / "tiny-qwen2.gguf")
    assert model_family(path) == "qwen2"
    tensors, dims = read_gguf(path)
    assert (dims.family, dims.theta, dims.rms_norm_eps, dims.tie_word_embeddings) == ("qwen2", 1e6, 1e-6, False)
    for name, value in hf.state_dict().items():
        np.testing.assert_array_equal(tensors[name], value.numpy(), err_msg=name)

    from research.llama3.checkpoint.convert_gguf import convert_gguf_to_mindformers

    convert_gguf_to_mindformers(path, tmp_path / "base.ckpt")
    ids = np.random.default_rng(17).integers(3, 64, size=(1, t.seq))
    ms_model = load_into_mindformers(t, dims, tmp_path / "base.ckpt")
    assert t.rel_err(t.logits(ms_model, ids), hf_logits(hf, ids)) < 1e-5


def test_unsupported_families_and_qwen2_features_are_refused(conv_tiny_llama, tmp_path):
    hf = random_qwen2(conv_tiny_llama, seed=18, tied=True)
    _saved(hf, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    config["use_sliding_window"] = True
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="sliding window"):
        read_hf_checkpoint(tmp_path / "hf")
    config["model_type"] = "mistral"
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="mistral.*known: llama, qwen2"):
        model_family(tmp_path / "hf")


def test_qwen2_tokenizer_pads_apart_from_eos_and_keeps_chatml_tokens(qwen2_tokenizer_dir):
    from preprocess.templates import get_template
    from research.llama3.tokenizers.tokenizer import build_tokenizer

    tok = build_tokenizer({"type": "Qwen2Tokenizer", "vocab_file": str(qwen2_tokenizer_dir / "vocab.json")})
    vocab = tok.hf.get_vocab()
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (vocab["<|endoftext|>"], vocab["<|endoftext|>"],
                                                    vocab["<|im_end|>"])
    assert tok.pad_id != tok.eos_id
    assert all(tok.special_id(t) is not None for t in get_template("chatml").special_tokens)
    ids = tok.encode("<|im_start|>user\n计算 3.25 + 1.50<|im_end|>\n")
    assert ids[0] == vocab["<|im_start|>"] and ids[-2] == vocab["<|im_end|>"]
    assert tok.hf.decode(ids) == "<|im_start|>user\n计算 3.25 + 1.50<|im_end|>\n"
    # the same tokenizer from the directory or its tokenizer.json
    assert build_tokenizer({"type": "Qwen2Tokenizer"}, str(qwen2_tokenizer_dir)).encode("7 times 7") == \
        tok.encode("7 times 7")
    with pytest.raises(ValueError, match="vocab_file"):
        build_tokenizer({"type": "Qwen2Tokenizer", "vocab_file": ""})


@pytest.mark.parametrize("copy", [True, False], ids=["output_copies_embedding", "independent_output"])
def test_gguf_output_that_copies_the_embedding_is_tied(conv_tiny_llama, tmp_path, copy):
    """A GGUF storing ``output.weight`` as a Q8_0 copy of ``token_embd.weight`` (plus noise far below the
    quantization step) is a tied model: dims say tied and the converters drop the copy. An independent
    ``output.weight`` stays the untied lm_head."""
    import gguf

    from research.llama3.checkpoint.convert_gguf import convert_gguf_to_mindformers
    from research.llama3.checkpoint.gguf_file import output_copies_embedding
    from research.llama3.config.model_config import LlamaDims

    t = conv_tiny_llama
    hf = random_qwen2(t, seed=19, tied=False)
    state = {name: value.numpy() for name, value in hf.state_dict().items()}
    embedding = state["model.embed_tokens.weight"]
    if copy:
        state["lm_head.weight"] = embedding + np.random.default_rng(20).normal(0, 1e-4, embedding.shape)
    path = write_qwen2_gguf(hf, tmp_path / "m.gguf", tensors=state,
                            quantized={"lm_head.weight": gguf.GGMLQuantizationType.Q8_0})
    assert output_copies_embedding(gguf.GGUFReader(str(path), "r")) is copy
    assert LlamaDims.from_gguf(path).tie_word_embeddings is copy
    tensors, dims = read_gguf(path)
    assert ("lm_head.weight" in tensors) is not copy
    if not copy:  # the Q8_0 lm_head, dequantized
        np.testing.assert_allclose(tensors["lm_head.weight"], state["lm_head.weight"], atol=0.02)
        return
    convert_gguf_to_mindformers(path, tmp_path / "base.ckpt")
    ms_model = load_into_mindformers(t, dims, tmp_path / "base.ckpt")  # every parameter loaded, none left over
    import torch

    with torch.no_grad():
        hf.lm_head.weight.copy_(torch.from_numpy(embedding))  # what the tied model computes
    ids = np.random.default_rng(21).integers(3, 64, size=(1, t.seq))
    assert t.rel_err(t.logits(ms_model, ids), hf_logits(hf, ids)) < 1e-5
