"""MindFormers (MindPet) LoRA <-> PEFT adapters on tiny random models: logits parity both ways."""
import json

import numpy as np
import pytest
import torch
import yaml

from preprocess.cli import run_main
from research.llama3.checkpoint.ms_checkpoint import save_ms_checkpoint
from research.llama3.checkpoint.peft_adapter import (
    load_peft_adapter,
    main,
    peft_lora_config,
    pet_config_from_adapter,
    target_hf_modules,
)
from research.llama3.checkpoint.to_hf import build_hf_model
from research.llama3.checkpoint.weight_names import hf_to_ms_name

pytestmark = pytest.mark.integration


def write_yaml(path, dims, rank, alpha, target=".*wq|.*wv"):
    config = {"model": {"model_config": {
        "num_layers": dims.num_layers, "hidden_size": dims.hidden_size,
        "pet_config": {"pet_type": "lora", "lora_rank": rank, "lora_alpha": alpha, "lora_dropout": 0.05,
                       "target_modules": target}}}}
    path.write_text(yaml.safe_dump(config))
    return path


def load_ms(model, *ckpts):
    import mindspore as ms

    params = {}
    for ckpt in ckpts:
        params.update(ms.load_checkpoint(str(ckpt)))
    not_loaded, unused = ms.load_param_into_net(model, params)
    assert not not_loaded and not unused
    return model


def test_mindformers_lora_to_peft_keeps_logits(conv_tiny_llama, tmp_path):
    from peft import PeftModel

    t = conv_tiny_llama
    dims = t.dims()
    model = t.build(dims, lora=True, seed=11)
    ids = np.random.default_rng(12).integers(3, dims.vocab_size, size=(1, t.seq))
    expected = t.logits(model, ids)
    base, lora = t.save_split(model, tmp_path)
    cfg = write_yaml(tmp_path / "tiny.yaml", dims, t.lora_rank, t.lora_alpha)

    assert main(["to_peft", "--config", str(cfg), "--lora_checkpoint", str(lora),
                 "--output_dir", str(tmp_path / "adapter")]) == 0
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["r"] == t.lora_rank and adapter_config["lora_alpha"] == t.lora_alpha
    assert sorted(adapter_config["target_modules"]) == ["q_proj", "v_proj"]

    peft_model = PeftModel.from_pretrained(build_hf_model(str(base), dims), tmp_path / "adapter").eval()
    with torch.no_grad():
        got = peft_model(torch.from_numpy(ids)).logits.numpy()
    assert t.rel_err(got, expected) < 1e-5
    # The adapter must matter, or parity would prove nothing.
    with torch.no_grad(), peft_model.disable_adapter():
        assert t.rel_err(peft_model(torch.from_numpy(ids)).logits.numpy(), expected) > 1e-2


def test_peft_adapter_to_mindformers_keeps_logits(conv_tiny_llama, tmp_path):
    from peft import get_peft_model
    from transformers import LlamaForCausalLM

    t = conv_tiny_llama
    dims = t.dims()
    torch.manual_seed(13)
    hf = LlamaForCausalLM(dims.to_hf_config())
    with torch.no_grad():
        for name, param in hf.named_parameters():
            param.copy_(torch.randn_like(param) * 0.2 + (1.0 if "norm" in name else 0.0))
    save_ms_checkpoint({hf_to_ms_name(n): v for n, v in hf.state_dict().items()}, tmp_path / "base.ckpt")
    pet = {"lora_rank": t.lora_rank, "lora_alpha": t.lora_alpha, "lora_dropout": 0.0, "target_modules": ".*wq|.*wv"}
    peft_model = get_peft_model(hf, peft_lora_config(pet, dims.num_layers))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero
                param.copy_(torch.randn_like(param) * 0.2)
    peft_model.eval()
    peft_model.save_pretrained(tmp_path / "adapter")
    ids = np.random.default_rng(14).integers(3, dims.vocab_size, size=(1, t.seq))
    with torch.no_grad():
        expected = peft_model(torch.from_numpy(ids)).logits.numpy()

    cfg = write_yaml(tmp_path / "tiny.yaml", dims, t.lora_rank, t.lora_alpha)
    assert main(["from_peft", "--adapter_dir", str(tmp_path / "adapter"), "--output", str(tmp_path / "lora.ckpt"),
                 "--config", str(cfg)]) == 0
    ms_model = load_ms(t.build(dims, lora=True), tmp_path / "base.ckpt", tmp_path / "lora.ckpt")
    assert t.rel_err(t.logits(ms_model, ids), expected) < 1e-5

    _, pet_back = load_peft_adapter(tmp_path / "adapter")
    assert pet_back == {"pet_type": "lora", "lora_rank": 8, "lora_alpha": 24.0, "lora_dropout": 0.0,
                        "target_modules": ".*wq|.*wv"}
    # A YAML whose alpha differs would make eval scale the delta wrongly: refused.
    wrong = write_yaml(tmp_path / "wrong.yaml", dims, t.lora_rank, 16)
    assert run_main(main, ["from_peft", "--adapter_dir", str(tmp_path / "adapter"), "--output", str(tmp_path / "x.ckpt"),
                 "--config", str(wrong)]) == 2


def test_target_modules_translation():
    assert target_hf_modules(".*wq|.*wv", 32) == ["q_proj", "v_proj"]
    assert target_hf_modules(".*w1|.*w2|.*w3", 2) == ["down_proj", "gate_proj", "up_proj"]
    assert target_hf_modules(r"model\.layers\.1\..*wq", 2) == ["model.layers.1.self_attn.q_proj"]
    with pytest.raises(ValueError, match="matches no Llama projection"):
        target_hf_modules(".*query", 2)
    with pytest.raises(ValueError, match="pet_type"):
        peft_lora_config({"pet_type": "prefix", "lora_rank": 8, "target_modules": ".*wq"}, 2)


def test_unexpressible_adapters_are_refused():
    from peft import LoraConfig

    lora = {"model.layers.0.attention.wq.mindpet_delta_lora_a": np.zeros((8, 64), np.float32),
            "model.layers.0.attention.wq.mindpet_delta_lora_b": np.zeros((64, 8), np.float32)}
    ok = pet_config_from_adapter(LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"]), lora)
    assert ok["target_modules"] == ".*wq" and ok["lora_alpha"] == 16.0
    with pytest.raises(ValueError, match="use_rslora"):
        pet_config_from_adapter(LoraConfig(r=8, lora_alpha=16, use_rslora=True, target_modules=["q_proj"]), lora)
    with pytest.raises(ValueError, match="r=4"):
        pet_config_from_adapter(LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj"]), lora)
