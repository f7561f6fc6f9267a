"""Every shipped YAML loads, uses MindFormers 1.9 keys, carries the contest LoRA, and builds at reduced size."""
import inspect
import math
from pathlib import Path

import pytest
import yaml

from research.llama3.param_count import lora_param_counts

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
REDUCED = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "vocab_size": 256, "intermediate_size": 128,
           "seq_length": 16, "batch_size": 1, "max_position_embedding": 64}
CPU_SETTINGS = {"use_flash_attention": False, "fused_rms_norm": False, "use_rope_slice": True,
                **{k: "float32" for k in ("compute_dtype", "layernorm_compute_type", "softmax_compute_type",
                                          "rotary_dtype", "param_init_type")}}


def _model_config(path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))["model"]["model_config"]


def test_configs_shipped():
    names = {p.relative_to(ROOT / "configs").as_posix() for p in CONFIGS}
    assert {"tiny/finetune_lora_cpu.yaml", "smollm2_135m/finetune_lora_cpu.yaml",
            "llama3_8b/finetune_lora_910b_1p.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name + "/" + p.name)
def test_config_keys_and_lora(path):
    from mindformers import LlamaConfig, MindFormerConfig

    config = MindFormerConfig(str(path))
    assert config.run_mode == "finetune" and config.model.arch.type == "LlamaForCausalLM"
    known = set(inspect.signature(LlamaConfig.__init__).parameters) | {"type", "pet_config"}
    unknown = set(config.model.model_config) - known
    assert not unknown, f"{path.name}: keys LlamaConfig does not take: {sorted(unknown)}"
    pet = config.model.model_config.pet_config
    assert (pet.pet_type, pet.lora_rank, pet.lora_alpha, pet.lora_dropout, pet.target_modules) == \
        ("lora", 8, 16, 0.05, ".*wq|.*wv")
    ckpt = [c for c in config.callbacks if c["type"] == "CheckpointMonitor"]
    assert ckpt and ckpt[0]["save_trainable_params"] is True  # the LoRA-only checkpoint
    assert config.processor.tokenizer.type
    assert config.train_dataset.input_columns == ["input_ids", "labels"]
    assert config.runner_config.batch_size == config.train_dataset.batch_size
    if config.context.device_target == "CPU":
        mc = config.model.model_config
        assert {k: mc[k] for k in CPU_SETTINGS} == CPU_SETTINGS, "CPU has no kernels for the fused/bf16 paths"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name + "/" + p.name)
def test_builds_at_reduced_size_with_the_counted_lora(path, tmp_path, monkeypatch):
    """Same keys, small dimensions, CPU settings: the LoRA cells built match the analytic count."""
    import mindspore as ms
    from mindformers import LlamaConfig, LlamaForCausalLM
    from mindformers.pet import LoraConfig
    from mindformers.pet.pet_model import get_pet_model

    monkeypatch.chdir(tmp_path)  # MindFormers writes adapter_config.json under ./output
    ms.set_context(device_target="CPU")
    full = _model_config(path)
    heads_per_kv = full["num_heads"] // (full.get("n_kv_heads") or full["num_heads"])
    mc = {**full, **REDUCED, **CPU_SETTINGS, "n_kv_heads": max(1, REDUCED["num_heads"] // heads_per_kv),
          "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    pet = mc.pop("pet_config")
    mc.pop("type")
    model = get_pet_model(LlamaForCausalLM(LlamaConfig(**mc)),
                          LoraConfig(lora_rank=pet["lora_rank"], lora_alpha=pet["lora_alpha"],
                                     lora_dropout=pet["lora_dropout"], target_modules=pet["target_modules"]))
    trainable = sum(math.prod(p.shape) for p in model.trainable_params())
    total = sum(math.prod(p.shape) for p in model.get_parameters())
    expected = lora_param_counts({**mc, "pet_config": pet})
    assert (trainable, total) == (expected["trainable"], expected["total"])
    assert trainable > 0 and all("mindpet_delta_lora" in p.name for p in model.trainable_params())


def test_llama3_8b_reference_lora_counts():
    """The contest's reference LoRA: 3,407,872 trainable parameters, ratio 0.000424 (data README)."""
    counts = lora_param_counts(_model_config(ROOT / "configs" / "llama3_8b" / "finetune_lora_910b_1p.yaml"))
    assert counts["trainable"] == 3_407_872
    assert counts["base"] == 8_030_261_248
    assert round(counts["ratio"], 6) == 0.000424
