"""research.llama3.checkpoint.merge_lora: LoRA folded into MindFormers base weights keeps the logits."""
import numpy as np
import pytest
import yaml

from preprocess.cli import run_main
from research.llama3.checkpoint.merge_lora import main
from research.llama3.checkpoint.ms_checkpoint import load_ms_checkpoint
from research.llama3.checkpoint.weight_names import is_lora_name

pytestmark = pytest.mark.integration


def yaml_with(path, pet):
    path.write_text(yaml.safe_dump({"model": {"model_config": {"num_layers": 2, "pet_config": pet}}}))
    return str(path)


def test_merged_checkpoint_matches_lora_model(conv_tiny_llama, tmp_path):
    import mindspore as ms

    t = conv_tiny_llama
    dims = t.dims()
    lora_model = t.build(dims, lora=True, seed=21)
    ids = np.random.default_rng(22).integers(3, dims.vocab_size, size=(1, t.seq))
    expected = t.logits(lora_model, ids)
    base, lora = map(str, t.save_split(lora_model, tmp_path))
    pet = {"pet_type": "lora", "lora_rank": t.lora_rank, "lora_alpha": t.lora_alpha, "target_modules": ".*wq|.*wv"}
    cfg = yaml_with(tmp_path / "run.yaml", pet)

    def merged_logits(source, out, config=cfg):
        assert main(["--config", config, "--load_checkpoint", base, "--lora_checkpoint", source,
                     "--output", str(out)]) == 0
        assert not any(is_lora_name(n) for n in load_ms_checkpoint(out))
        plain = t.build(dims, lora=False)
        not_loaded, unused = ms.load_param_into_net(plain, ms.load_checkpoint(str(out)))
        assert not not_loaded and not unused
        return t.logits(plain, ids)

    assert t.rel_err(merged_logits(lora, tmp_path / "merged.ckpt"), expected) < 1e-5
    # scaling 1 (what transform_ckpt_lora assumes by default) gives another model
    scale_one = yaml_with(tmp_path / "one.yaml", {**pet, "lora_alpha": t.lora_rank})
    assert t.rel_err(merged_logits(lora, tmp_path / "one.ckpt", scale_one), expected) > 1e-2

    # a PEFT adapter directory merges the same way, with its own alpha/rank
    from research.llama3.checkpoint.peft_adapter import main as adapter_main

    assert adapter_main(["to_peft", "--config", cfg, "--lora_checkpoint", lora,
                         "--output_dir", str(tmp_path / "adapter")]) == 0
    assert t.rel_err(merged_logits(str(tmp_path / "adapter"), tmp_path / "from_peft.ckpt"), expected) < 1e-5


def test_alpha_and_rank_are_never_guessed(tmp_path, capsys, conv_tiny_llama):
    t = conv_tiny_llama
    model = t.build(t.dims(), lora=True)
    ckpt = str(t.save(list(model.get_parameters()), tmp_path / "full.ckpt"))
    cfg = yaml_with(tmp_path / "noalpha.yaml", {"pet_type": "lora", "lora_rank": 8, "target_modules": ".*wq"})
    assert run_main(main, ["--config", cfg, "--load_checkpoint", ckpt, "--lora_checkpoint", ckpt,
                 "--output", str(tmp_path / "m.ckpt")]) == 2
    assert "lora_alpha" in capsys.readouterr().err
    assert not (tmp_path / "m.ckpt").exists()
