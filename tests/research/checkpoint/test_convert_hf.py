"""HF safetensors Llama directories <-> MindFormers checkpoints on tiny random models: logits parity."""
import json

import numpy as np
import pytest
import torch

from preprocess.cli import run_main
from research.llama3.checkpoint.convert_hf import convert_hf_to_mindformers, convert_mindformers_to_hf, main, read_hf_checkpoint

pytestmark = pytest.mark.integration


def random_hf_model(t, dims, seed):
    from transformers import LlamaForCausalLM

    return t.randomize_hf(LlamaForCausalLM(dims.to_hf_config()), seed)


def load_into_mindformers(t, dims, ckpt):
    import mindspore as ms

    model = t.build(dims, lora=False)
    not_loaded, unused = ms.load_param_into_net(model, ms.load_checkpoint(str(ckpt)))
    assert not not_loaded and not unused
    return model


@pytest.mark.parametrize("tied", [False, True])
def test_hf_to_mindformers_and_back_keeps_logits(conv_tiny_llama, tmp_path, tied):
    t = conv_tiny_llama
    dims = t.dims(tied)
    hf = random_hf_model(t, dims, seed=5)
    # Small shards force the index.json layout of Meta's Llama-3-8B repository.
    hf.save_pretrained(tmp_path / "hf", max_shard_size="60KB", safe_serialization=True)
    index = json.loads((tmp_path / "hf" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1

    ids = np.random.default_rng(6).integers(3, dims.vocab_size, size=(1, t.seq))
    with torch.no_grad():
        expected = hf(torch.from_numpy(ids)).logits.numpy()

    assert main(["to_mindformers", "--hf_dir", str(tmp_path / "hf"), "--output", str(tmp_path / "base.ckpt")]) == 0
    ms_model = load_into_mindformers(t, dims, tmp_path / "base.ckpt")
    assert t.rel_err(t.logits(ms_model, ids), expected) < 1e-5

    convert_mindformers_to_hf(tmp_path / "base.ckpt", dims, tmp_path / "back")
    from transformers import AutoModelForCausalLM

    back = AutoModelForCausalLM.from_pretrained(tmp_path / "back", dtype=torch.float32).eval()
    assert back.config.tie_word_embeddings is tied
    with torch.no_grad():
        got = back(torch.from_numpy(ids)).logits.numpy()
    assert t.rel_err(got, expected) < 1e-5
    for name, value in hf.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name


def test_bfloat16_checkpoint_round_trips_exactly(conv_tiny_llama, tmp_path):
    t = conv_tiny_llama
    dims = t.dims()
    hf = random_hf_model(t, dims, seed=7).to(torch.bfloat16)
    hf.save_pretrained(tmp_path / "hf")
    convert_hf_to_mindformers(tmp_path / "hf", tmp_path / "bf16.ckpt", dtype="bfloat16")
    convert_mindformers_to_hf(tmp_path / "bf16.ckpt", dims, tmp_path / "back", dtype="bfloat16")
    tensors, _ = read_hf_checkpoint(tmp_path / "back")
    for name, value in hf.state_dict().items():
        assert tensors[name].dtype == torch.bfloat16
        assert torch.equal(tensors[name], value), name


def test_bad_hf_directories_are_named(conv_tiny_llama, tmp_path, capsys):
    t = conv_tiny_llama
    hf = random_hf_model(t, t.dims(), seed=8)
    hf.save_pretrained(tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    config["num_hidden_layers"] = 3
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="missing=.*model.layers.2"):
        read_hf_checkpoint(tmp_path / "hf")
    config.update(num_hidden_layers=2, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0,
                                                     "original_max_position_embeddings": 8192})
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="rope scaling"):
        read_hf_checkpoint(tmp_path / "hf")
    config.pop("rope_scaling")
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    (tmp_path / "hf" / "model.safetensors").unlink()
    assert run_main(main, ["to_mindformers", "--hf_dir", str(tmp_path / "hf"), "--output", str(tmp_path / "x.ckpt")]) == 2
    assert "model.safetensors found" in capsys.readouterr().err
