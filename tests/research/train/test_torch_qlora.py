"""QLoRA on the torch path, on CPU: a bitsandbytes-quantized tiny Llama (made and saved by transformers
itself) under PEFT LoRA trains through torch_finetune's CLI, its adapter round-trips, and the
dequantize-merge-save path reproduces the adapter model."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from preprocess.cli import run_main
from research.llama3.config.model_config import LlamaDims
from research.llama3.train import quantization, torch_data, torch_finetune, torch_loop
from research.llama3.train.param_count import count_parameters

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml"
STEPS = 8


@pytest.fixture(scope="module")
def tiny_hf_base(tmp_path_factory):
    """A random Llama with the tiny YAML's dims, built by ``LlamaConfig`` + ``from_config`` and saved
    with ``save_pretrained`` (float32 safetensors)."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
                         max_position_embeddings=2048, tie_word_embeddings=False, bos_token_id=1,
                         eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("qlora_base") / "hf"
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A MindRecord of 8 short conversations at seq_length 128 (the tiny YAML's tokenizer and template)."""
    from research.llama3.records.mindrecord import main as mindrecord_main

    work = tmp_path_factory.mktemp("qlora_data")
    conv = [{"id": f"c{i}", "conversations": [{"from": "human", "value": f"{i}.25 + 1.50 = ?"},
                                              {"from": "gpt", "value": f"{i}.25 + 1.50 = {i + 1}.75"}]}
            for i in range(8)]
    (work / "conv.json").write_text(json.dumps(conv), encoding="utf-8")
    assert mindrecord_main(["--input_glob", str(work / "conv.json"), "--config", str(TINY), "--seq_length", "128",
                            "--output_file", str(work / "train.mindrecord")]) == 0
    cfg = work / "tiny.yaml"  # 8 records are 2 batches: 4 epochs give STEPS steps
    cfg.write_text(TINY.read_text(encoding="utf-8").replace("epochs: 1", "epochs: 4"), encoding="utf-8")
    return work


def train_cli(records, base, run_dir, kind, *extra):
    return torch_finetune.main(["--config", str(records / "tiny.yaml"), "--train_dataset",
                                str(records / "train.mindrecord"), "--load_checkpoint", str(base),
                                "--output_dir", str(run_dir / "out"), "--run_dir", str(run_dir),
                                "--stop_step", str(STEPS), "--device", "cpu", "--quantization", kind, *extra])


@pytest.fixture(scope="module")
def nf4_run(records, tiny_hf_base, tmp_path_factory):
    run = tmp_path_factory.mktemp("qlora_nf4")
    assert train_cli(records, tiny_hf_base, run, "nf4") == 0
    return run


def losses(run_dir):
    return np.array([json.loads(line)["loss"] for line in (run_dir / "loss.jsonl").read_text().splitlines()])


def tiny_ids():
    return torch.from_numpy(np.random.default_rng(1).integers(3, 2000, size=(2, 24)))


def adapter_logits(base, adapter_dir, kind):
    """Logits of ``base`` quantized to ``kind`` as training quantized it, with the saved adapter, eval mode."""
    from peft import PeftModel

    model = quantization.load_quantized(str(base), kind, torch.float32)
    with torch.no_grad():
        return PeftModel.from_pretrained(model, str(adapter_dir)).eval()(tiny_ids()).logits


def test_nf4_base_is_4bit_with_double_quantization_and_lora_in_float32(tiny_hf_base):
    import bitsandbytes as bnb

    settings = torch_data.load_settings(str(TINY))
    dims = LlamaDims.from_mindformers(settings.model_config)
    model = torch_loop.build_lora_model(str(tiny_hf_base), dims, settings.pet_config, torch.float32,
                                            quantization="nf4")
    q_proj = model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit)
    state = q_proj.base_layer.weight.quant_state
    assert (state.quant_type, state.nested, tuple(state.shape)) == ("nf4", True, (64, 64))
    assert q_proj.base_layer.weight.dtype == torch.uint8 and not q_proj.base_layer.weight.requires_grad
    assert q_proj.lora_A["default"].weight.dtype == torch.float32 and q_proj.lora_A["default"].weight.requires_grad
    # The MLP and k/o projections are quantized too (not adapted); embeddings and lm_head stay float32.
    assert isinstance(model.base_model.model.model.layers[1].mlp.down_proj, bnb.nn.Linear4bit)
    assert model.base_model.model.lm_head.weight.dtype == torch.float32
    # 4-bit weights count their original elements: the same figures as the float model.
    plain = torch_loop.build_lora_model(str(tiny_hf_base), dims, settings.pet_config, torch.float32)
    counts = [count_parameters((quantization.quantized_numel(p), p.requires_grad) for p in m.parameters())
              for m in (model, plain)]
    assert counts[0] == counts[1] and counts[0]["trainable"] == 2 * (8 * (64 + 64) + 8 * (64 + 32))


def test_nf4_training_lowers_the_loss_and_writes_both_adapter_formats(nf4_run):
    loss = losses(nf4_run)
    assert loss.shape == (STEPS,) and np.isfinite(loss).all()
    assert loss[-2:].mean() < loss[:2].mean() - 0.05, loss
    assert (nf4_run / "adapter" / "adapter_model.safetensors").is_file() and (nf4_run / "lora.ckpt").is_file()
    recorded = yaml.safe_load((nf4_run / "config.yaml").read_text())["torch_finetune"]
    assert recorded["quantization"] == "nf4"
    adapter_config = json.loads((nf4_run / "adapter" / "adapter_config.json").read_text())
    assert (adapter_config["r"], adapter_config["lora_alpha"], sorted(adapter_config["target_modules"])) == \
        (8, 16, ["q_proj", "v_proj"])


def test_adapter_round_trips_to_the_same_logits(nf4_run, tiny_hf_base, tmp_path):
    """Reloaded (quantized base + PEFT adapter) twice, and saved again: bit-identical logits; and the
    trained adapter really changes the model."""
    from peft import PeftModel

    first = adapter_logits(tiny_hf_base, nf4_run / "adapter", "nf4")
    model = PeftModel.from_pretrained(quantization.load_quantized(str(tiny_hf_base), "nf4", torch.float32),
                                      str(nf4_run / "adapter"))
    model.save_pretrained(tmp_path / "again")
    assert torch.equal(adapter_logits(tiny_hf_base, tmp_path / "again", "nf4"), first)
    with torch.no_grad():
        base_only = quantization.load_quantized(str(tiny_hf_base), "nf4", torch.float32)(tiny_ids()).logits
    assert (first - base_only).abs().max() > 1e-3


def test_merged_model_matches_the_adapter_model(nf4_run, tiny_hf_base, tmp_path):
    """The merged float model equals the quantized base + adapter: both compute x (W' + s B A)^T in
    float32 with W' the dequantized nf4 weight, differing only in summation order (float32 eps 1.2e-7
    times a few dozen terms of the 64-wide dot products, through two layers: about 1e-6 of logits of
    size ~1; 1e-5 leaves that a 10x margin). Against the original float weights it differs by the nf4
    rounding itself, far more."""
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    merged_dir = quantization.merge_adapter(str(tiny_hf_base), str(nf4_run / "adapter"), str(tmp_path / "m"), "nf4")
    merged = LlamaForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    assert not any("lora" in name for name in merged.state_dict())
    with torch.no_grad():
        got = merged(tiny_ids()).logits
        float_base = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(tiny_hf_base, dtype=torch.float32),
                                               str(nf4_run / "adapter")).eval()(tiny_ids()).logits
    want = adapter_logits(tiny_hf_base, nf4_run / "adapter", "nf4")
    error = (got - want).abs().max().item()
    assert error < 1e-5
    assert (got - float_base).abs().max().item() > 100 * error


def test_int8_trains_and_merges_within_its_activation_rounding(records, tiny_hf_base, tmp_path):
    """LLM.int8 also quantizes the activations (per row, to int8 of the row's absmax, through float16),
    which the merged float model does not: each matmul's relative error is up to ~1/254 of a row's
    absmax, so the merged logits match to a few 1e-3 of their scale, not to float32 rounding."""
    assert train_cli(records, tiny_hf_base, tmp_path / "run", "int8") == 0
    loss = losses(tmp_path / "run")
    assert loss[-2:].mean() < loss[:2].mean() - 0.05, loss
    from transformers import LlamaForCausalLM

    merged_dir = quantization.merge_adapter(str(tiny_hf_base), str(tmp_path / "run" / "adapter"),
                                            str(tmp_path / "m"), "int8")
    with torch.no_grad():
        got = LlamaForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()(tiny_ids()).logits
    want = adapter_logits(tiny_hf_base, tmp_path / "run" / "adapter", "int8")
    assert (got - want).abs().max().item() < 2e-2 * want.abs().max().item()


def test_mindformers_checkpoint_base_quantizes_like_its_hf_conversion(records, tmp_path):
    """The runner hands torch_finetune a MindFormers checkpoint: it is rebuilt as a float transformers
    model and quantized through a temporary save_pretrained directory. Its HF conversion, quantized
    while loading, gives the same nf4 codes, so the same seed gives the same losses."""
    from research.llama3.checkpoint.convert_hf import convert_mindformers_to_hf
    from research.llama3.checkpoint.random_init import init_random_checkpoint

    init_random_checkpoint(str(TINY), str(tmp_path / "base.ckpt"))
    dims = LlamaDims.from_mindformers(torch_data.load_settings(str(TINY)).model_config)
    convert_mindformers_to_hf(tmp_path / "base.ckpt", dims, tmp_path / "hf")
    for base, run in ((tmp_path / "base.ckpt", tmp_path / "from_ckpt"), (tmp_path / "hf", tmp_path / "from_hf")):
        assert train_cli(records, base, run, "nf4", "--stop_step", "2") == 0
    assert losses(tmp_path / "from_ckpt").tolist() == losses(tmp_path / "from_hf").tolist()
    assert (tmp_path / "from_ckpt" / "lora.ckpt").is_file()


@pytest.mark.parametrize("kind", ["none", "nf4"])
def test_gradient_checkpointing_gives_the_same_gradients(tiny_hf_base, kind):
    """Recomputing activations in the backward (non-reentrant checkpointing) changes memory, not maths."""
    settings = torch_data.load_settings(str(TINY))
    dims = LlamaDims.from_mindformers(settings.model_config)
    ids = tiny_ids()
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)  # the same LoRA initialisation and dropout masks
        model = torch_loop.build_lora_model(str(tiny_hf_base), dims, settings.pet_config, torch.float32,
                                                quantization=kind, gradient_checkpointing=checkpointing)
        assert model.base_model.model.is_gradient_checkpointing == checkpointing
        loss, count = torch_loop.CausalLMLoss(model)(ids, ids, torch.arange(ids.shape[1]).expand_as(ids))
        (loss / count).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == 8
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], rtol=1e-5, atol=1e-7), name


def test_merge_cli_names_bad_inputs(tiny_hf_base, tmp_path, capsys):
    assert run_main(quantization.main, ["merge", "--base_dir", str(tiny_hf_base), "--adapter_dir", str(tmp_path / "none"),
                              "--quantization", "nf4", "--output_dir", str(tmp_path / "out")]) == 2
    assert "adapter_dir" in capsys.readouterr().err
    with pytest.raises(ValueError, match="nf4"):
        quantization.bnb_config("fp8", torch.float32)
