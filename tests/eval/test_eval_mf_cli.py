"""python -m eval.math with --backend mindformers vs transformers: same checkpoint + LoRA, same output.

Uses the tiny YAML (2 layers, the real SmolLM2 tokenizer from the embedded GGUF) with a random
base checkpoint and a random LoRA checkpoint whose B matrices are non-zero, so the parity also
covers LoRA scaling (MindPet's LoRADense in MindFormers vs the merged delta in transformers).
"""
import json
from pathlib import Path

import numpy as np
import pytest

from eval import math as math_cli

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs/tiny/finetune_lora_cpu.yaml"
ITEMS = [{"id": i, "category": "demo", "problem": p, "answer": "1"}
         for i, p in enumerate(["计算 1 + 2 等于多少？", "解方程 -39x + 20 = 0", "What is 7 * 8?"])]


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    import mindspore as ms

    from eval.model_args import read_model_config
    from mindformers.pet import LoraConfig
    from mindformers.pet.pet_model import get_pet_model

    from research.llama3.checkpoint.random_init import build_model

    d = tmp_path_factory.mktemp("tiny_mf")
    base = str(d / "base.ckpt")
    # Base and LoRA checkpoints with MindFormers' own names, from a model with the adapter cells.
    mc = read_model_config(str(CONFIG))
    pet = mc["pet_config"]
    net = get_pet_model(build_model(mc), LoraConfig(lora_rank=pet["lora_rank"], lora_alpha=pet["lora_alpha"],
                                                    lora_dropout=0.0, target_modules=pet["target_modules"]))
    # Weights larger than MindFormers' init (std 0.2, norms around 1) give peaked, prompt-dependent
    # logits; LoRA B is non-zero so the delta and its alpha/rank scaling matter.
    rng = np.random.default_rng(0)
    params = [{"name": p.name, "data": ms.Tensor((rng.normal(0, 0.2, size=p.shape)
                                                  + (1.0 if "norm" in p.name else 0.0)).astype(np.float32))}
              for p in net.get_parameters()]
    lora = [p for p in params if "mindpet_delta_lora" in p["name"]]
    assert len(lora) == 2 * 2 * 2  # layers x (wq, wv) x (A, B)
    ms.save_checkpoint([p for p in params if "mindpet_delta_lora" not in p["name"]], base)
    ms.save_checkpoint(lora, str(d / "lora.ckpt"))
    items = d / "items.jsonl"
    items.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ITEMS), encoding="utf-8")
    return base, str(d / "lora.ckpt"), str(items)


def _run(tmp_path, name, items, extra):
    out = tmp_path / name
    assert math_cli.main(["--items", items, "--config", str(CONFIG), "--max_new_tokens", "5",
                          "--batch_size", "3", "--output_dir", str(out), *extra]) == 0
    return [json.loads(x)["generation"] for x in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]


def test_backends_agree_through_cli_with_lora(tiny_checkpoints, tmp_path):
    base, lora, items = tiny_checkpoints
    ckpt = ["--load_checkpoint", base, "--lora_checkpoint", lora]
    hf = _run(tmp_path, "hf", items, [*ckpt, "--backend", "transformers", "--device", "cpu"])
    mf = _run(tmp_path, "mf", items, [*ckpt, "--backend", "mindformers", "--seq_length", "96"])
    print("transformers:", hf, "\nmindformers:", mf)
    assert hf == mf and len(set(hf)) > 1 and all(hf)
    metrics = json.loads((tmp_path / "mf/metrics.json").read_text(encoding="utf-8"))
    assert metrics["source"]["backend"] == "mindformers" and metrics["source"]["seq_length"] == 96
