"""End to end on a tiny random Qwen2 (q/k/v biases, theta 1e6, eps 1e-6, tied embeddings): `bash
scripts/finetune.sh --smoke --config configs/tiny/finetune_lora_cpu_qwen2.yaml --template chatml` trains,
evaluates before/after and reports; the run then exports to a transformers Qwen2ForCausalLM directory
(LoRA merged) and to MindIR (parity with the unmerged MindFormers model checked by the export CLI)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from research.rundir.layout import RunLayout
from research.rundir.manifest import Manifest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "tiny" / "finetune_lora_cpu_qwen2.yaml"
pytestmark = pytest.mark.e2e


def test_qwen2_smoke_chain_trains_evaluates_and_exports(tmp_path):
    run_id = f"pytest-smoke-qwen2-{os.getpid()}"
    run = ROOT / "logs" / run_id
    env = {**os.environ, "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")}
    try:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "finetune.sh"), "--smoke", "--config", str(CONFIG),
                               "--template", "chatml", "--target_style", "cot", "--stop_step", "4",
                               "--eval_limit", "8", "--run_id", run_id],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        manifest = Manifest.require(RunLayout(run))
        assert {name: rec["status"] for name, rec in manifest.stages.items()} == dict.fromkeys(
            ("data", "preprocess", "mindrecord", "base", "train", "eval_math_base", "eval_math_lora", "report"), "done")
        settings = manifest.settings
        assert (settings["template"], settings["config"], settings["base_source"]) == \
            ("chatml", str(CONFIG), "random_init")
        assert json.loads((run / "train.mindrecord.report.json").read_text())["template"] == "chatml"

        import mindspore as ms

        base_ckpt, lora_ckpt = RunLayout(run).random_base, run / "lora.ckpt"
        base = ms.load_checkpoint(str(base_ckpt))
        assert tuple(base["model.layers.0.attention.wq.bias"].shape) == (64,)
        assert tuple(base["model.layers.0.attention.wk.bias"].shape) == (32,)  # 2 kv heads x head_dim 16
        assert "lm_head.weight" not in base  # tied to the embedding
        lora = ms.load_checkpoint(str(lora_ckpt))
        assert not any(name.endswith(".bias") for name in lora)  # biases stay frozen under LoRA
        losses = [json.loads(line)["loss"] for line in (run / "loss.jsonl").read_text().splitlines()]
        assert len(losses) == 4 and all(np.isfinite(losses))
        for which in ("math_base", "math_lora"):
            metrics = json.loads((run / "eval" / which / "metrics.json").read_text())
            assert metrics["overall"]["total"] == 8
        lora_metrics = json.loads((run / "eval" / "math_lora" / "metrics.json").read_text())
        assert lora_metrics["source"]["template"] == "chatml"

        # export 1: HF directory, LoRA merged, loaded by transformers as a Qwen2
        hf_dir = tmp_path / "hf"
        _cli(["-m", "research.llama3.checkpoint.convert_hf", "to_hf", "--config", CONFIG, "--load_checkpoint", base_ckpt,
              "--lora_checkpoint", lora_ckpt, "--output_dir", hf_dir, "--with_tokenizer"], env)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
        config = model.config
        assert type(model).__name__ == "Qwen2ForCausalLM"
        assert (config.rope_theta, config.rms_norm_eps, config.tie_word_embeddings) == (1e6, 1e-6, True)
        tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        # the YAML's pad (<|endoftext|>, 0), never the EOS <|im_end|> that ends ChatML turns
        assert config.pad_token_id == 0 and tokenizer.eos_token == "<|im_end|>" != tokenizer.convert_ids_to_tokens(0)
        ids = tokenizer("<|im_start|>user\n1+1<|im_end|>\n<|im_start|>assistant\n", return_tensors="pt").input_ids
        out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=config.pad_token_id)
        assert out.shape[1] > ids.shape[1]

        # export 2: MindIR of the LoRA-merged MindFormers model, compared with the unmerged one
        mindir = tmp_path / "qwen2.mindir"
        proc = _cli(["-m", "research.llama3.export.export_mindir", "--config", CONFIG, "--load_checkpoint", base_ckpt,
                     "--lora_checkpoint", lora_ckpt, "--output", mindir, "--seq_length", "16", "--check_parity"], env)
        rel_err = float(re.search(r"parity vs unmerged model \(mindspore\): rel err (\S+),", proc.stdout).group(1))
        assert mindir.stat().st_size > 0 and rel_err < 1e-5
    finally:
        subprocess.run(["rm", "-rf", str(run)], check=False)


def _cli(args, env):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{args[:3]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc
