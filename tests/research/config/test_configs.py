"""Every shipped YAML loads, uses MindFormers 1.9 keys, carries the contest LoRA, and builds at reduced size."""
import inspect
import math
import re
from pathlib import Path

import pytest
import yaml

from research.llama3.config.model_config import read_model_config
from research.llama3.train.param_count import lora_param_counts

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
# MindFormers YAMLs; configs/preprocess/ holds the data pipeline's own settings.
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml")
                 if "preprocess" not in p.relative_to(ROOT / "configs").parts)
REDUCED = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "vocab_size": 256, "intermediate_size": 128,
           "seq_length": 16, "batch_size": 1, "max_position_embedding": 64}
CPU_SETTINGS = {"use_flash_attention": False, "fused_rms_norm": False, "use_rope_slice": True,
                **{k: "float32" for k in ("compute_dtype", "layernorm_compute_type", "softmax_compute_type",
                                          "rotary_dtype", "param_init_type")}}


LLAMA3_8B = sorted((ROOT / "configs" / "llama3_8b").glob("*.yaml"))
PROJECT_GLOBAL_BATCH = 16  # every Llama3-8B card count trains the same optimisation
CONTEST_GLOBAL_BATCH = 64  # the contest's reference recipe (finetune_lora_910b_4p_contest.yaml)


def _model_config(path):
    return read_model_config(path)


def test_configs_shipped():
    names = {p.relative_to(ROOT / "configs").as_posix() for p in CONFIGS}
    ascend = {f"llama3_8b/finetune_lora_910b_{n}p{s}.yaml" for n in (1, 4, 8) for s in ("", "_seq512")}
    ascend.add("llama3_8b/finetune_lora_910b_4p_contest.yaml")
    ascend |= {f"qwen2_5/finetune_lora_910b_{n}p.yaml" for n in (1, 4, 8)} | {"qwen2_5/finetune_lora_32b_910b_8p.yaml"}
    assert {"tiny/finetune_lora_cpu.yaml", "tiny/finetune_lora_cpu_qwen2.yaml", "tiny/finetune_lora_cpu_dp2.yaml", "smollm2_135m/finetune_lora_cpu.yaml",
            "llama3_8b/predict_lora_910b_1p.yaml", "llama3_8b/eval_base_910b_1p.yaml", *ascend} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name + "/" + p.name)
def test_config_keys_and_lora(path):
    from mindformers import LlamaConfig, MindFormerConfig
    from mindformers.modules.transformer.transformer import TransformerOpParallelConfig
    from mindspore.parallel._auto_parallel_context import _set_auto_parallel_context_func_map

    config = MindFormerConfig(str(path))
    assert config.run_mode in ("finetune", "predict") and config.model.arch.type == "LlamaForCausalLM"
    known = set(inspect.signature(LlamaConfig.__init__).parameters) | {"type", "pet_config"}
    unknown = set(config.model.model_config) - known
    assert not unknown, f"{path.name}: keys LlamaConfig does not take: {sorted(unknown)}"
    # MindFormers hands `parallel` to mindspore.set_auto_parallel_context and `parallel_config` to
    # TransformerOpParallelConfig; a misspelt key there is only caught on the device otherwise.
    unknown = set(config.parallel) - set(_set_auto_parallel_context_func_map)
    assert not unknown, f"{path.name}: parallel keys MindSpore does not take: {sorted(unknown)}"
    unknown = set(config.parallel_config) - set(inspect.signature(TransformerOpParallelConfig.__init__).parameters)
    assert not unknown, f"{path.name}: parallel_config keys MindFormers does not take: {sorted(unknown)}"
    cards = re.search(r"_(\d+)p(_|\.)", path.name)
    if cards:  # the card count in the name is the one the parallel settings need
        pc, n = config.parallel_config, int(cards.group(1))
        assert config.use_parallel == (n > 1) and pc.data_parallel * pc.model_parallel * pc.pipeline_stage == n
    if path.name.startswith("eval_base"):
        assert "pet_config" not in config.model.model_config  # the base model, before fine-tuning
        return
    pet = config.model.model_config.pet_config
    # The embedded CPU default adapts every linear layer (measured, docs/recipe_runs.md); the tiny YAML
    # and those built on it (base_config) train without dropout so that a --smoke run repeats bit for
    # bit; the rest keep the contest's LoRA.
    tiny_based = path.parent.name == "tiny" and path.name != "finetune_lora_cpu_dp2.yaml"
    expected = ("lora", 16, 32, 0.0, ".*wq|.*wk|.*wv|.*wo|.*w1|.*w2|.*w3") if path.name == "finetune_lora_cpu.yaml" \
        and path.parent.name == "smollm2_135m" else ("lora", 8, 16, 0.0 if tiny_based else 0.05, ".*wq|.*wv")
    assert (pet.pet_type, pet.lora_rank, pet.lora_alpha, pet.lora_dropout, pet.target_modules) == expected
    if config.run_mode == "predict":
        return
    if path.parent.name == "llama3_8b":
        expected = CONTEST_GLOBAL_BATCH if "contest" in path.name else PROJECT_GLOBAL_BATCH
        assert config.runner_config.batch_size * config.parallel_config.data_parallel == expected
        assert f"_seq{config.model.model_config.seq_length}" in path.name or \
            config.model.model_config.seq_length == 256
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

    monkeypatch.chdir(tmp_path)  # MindFormers writes adapter_config.json under ./output
    ms.set_context(device_target="CPU")
    full = _model_config(path)
    heads_per_kv = full["num_heads"] // (full.get("n_kv_heads") or full["num_heads"])
    mc = {**full, **REDUCED, **CPU_SETTINGS, "n_kv_heads": max(1, REDUCED["num_heads"] // heads_per_kv),
          "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    pet = mc.pop("pet_config", None)
    mc.pop("type")
    model = _build(mc, pet)
    trainable = sum(math.prod(p.shape) for p in model.trainable_params()) if pet else 0
    # use_past (predict) adds the paged KV-cache blocks as parameters; they are buffers, not weights.
    total = sum(math.prod(p.shape) for p in model.get_parameters() if not p.name.endswith(("key_cache", "value_cache")))
    expected = lora_param_counts({**mc, "pet_config": pet})
    assert (trainable, total) == (expected["trainable"], expected["total"])
    if pet:
        assert trainable > 0 and all("mindpet_delta_lora" in p.name for p in model.trainable_params())


def _build(mc: dict, pet: dict | None):
    """MindFormers' LlamaForCausalLM from LlamaConfig keys, wrapped by MindFormers' LoRA when ``pet`` is given."""
    from mindformers import LlamaConfig, LlamaForCausalLM
    from mindformers.pet import LoraConfig
    from mindformers.pet.pet_model import get_pet_model

    model = LlamaForCausalLM(LlamaConfig(**mc))
    if not pet:
        return model
    return get_pet_model(model, LoraConfig(lora_rank=pet["lora_rank"], lora_alpha=pet["lora_alpha"],
                                           lora_dropout=pet["lora_dropout"], target_modules=pet["target_modules"]))


@pytest.mark.parametrize("path", [p for p in LLAMA3_8B if "pet_config" in _model_config(p)], ids=lambda p: p.name)
def test_llama3_8b_reference_lora_counts(path):
    """The contest's reference LoRA: 3,407,872 trainable parameters, ratio 0.000424 (data README)."""
    counts = lora_param_counts(_model_config(path))
    assert counts["trainable"] == 3_407_872
    assert counts["base"] == 8_030_261_248
    assert round(counts["ratio"], 6) == 0.000424


QWEN2_5 = {"finetune_lora_910b_1p.yaml": (3584, 28, 28, 4, 18944), "finetune_lora_32b_910b_8p.yaml": (5120, 64, 40, 8, 27648)}


@pytest.mark.parametrize("name", sorted(QWEN2_5))
def test_qwen2_5_counts_match_transformers_qwen2(name):
    """The Qwen2.5 YAMLs' dims (7B-Instruct and 32B config.json) counted here equal the parameters of
    transformers' own Qwen2ForCausalLM built on the meta device; the memory arithmetic of docs/ascend.md
    starts from these counts (bf16: 2 bytes each)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    mc = _model_config(ROOT / "configs" / "qwen2_5" / name)
    hidden, layers, heads, kv, ffn = QWEN2_5[name]
    assert (mc["hidden_size"], mc["num_layers"], mc["num_heads"], mc["n_kv_heads"], mc["intermediate_size"]) == \
        (hidden, layers, heads, kv, ffn)
    assert (mc["vocab_size"], mc["theta"], mc["rms_norm_eps"], mc["qkv_has_bias"], mc["tie_word_embeddings"]) == \
        (152064, 1000000, 1e-6, True, False)
    config = Qwen2Config(vocab_size=152064, hidden_size=hidden, intermediate_size=ffn, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=False)
    with torch.device("meta"):
        reference = sum(p.numel() for p in Qwen2ForCausalLM(config).parameters())
    counts = lora_param_counts(mc)
    assert counts["base"] == reference == {3584: 7_615_616_512, 5120: 32_763_876_352}[hidden]
    assert counts["trainable"] == {3584: 2_523_136, 5120: 8_388_608}[hidden]  # wq/wv rank 8


def test_llama3_8b_full_size_abstract_build(tmp_path, monkeypatch):
    """The real 8B network with LoRA, built without allocating its weights (mindspore ``no_init_parameters``):
    MindFormers' own cells give 3,407,872 trainable parameters and ratio 0.000424."""
    import resource

    import mindspore as ms
    from mindspore.nn.utils import no_init_parameters

    monkeypatch.chdir(tmp_path)
    ms.set_context(device_target="CPU")
    mc = _model_config(ROOT / "configs" / "llama3_8b" / "finetune_lora_910b_1p.yaml")
    pet = mc.pop("pet_config")
    mc.pop("type")
    with no_init_parameters():
        model = _build({**mc, **CPU_SETTINGS}, pet)
    trainable = sum(math.prod(p.shape) for p in model.trainable_params())
    base = sum(math.prod(p.shape) for p in model.get_parameters()) - trainable
    assert (trainable, base) == (3_407_872, 8_030_261_248)
    assert round(trainable / base, 6) == 0.000424
    # 8B float32 weights would be 32 GB; the abstract build stays far below that
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 8 * 2 ** 20


def test_variants_state_only_what_differs():
    """Each card/seq variant inherits the 1-card file and states only its own keys."""
    variants = [p for p in LLAMA3_8B if p.name.startswith("finetune_") and p.name != "finetune_lora_910b_1p.yaml"]
    assert len(variants) == 6
    for path in variants:
        own = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert own["base_config"].startswith("finetune_lora_910b_"), path.name
        assert "optimizer" not in own  # one optimizer for all variants, in the 1-card file
        assert len(path.read_text(encoding="utf-8").splitlines()) < 50, path.name
