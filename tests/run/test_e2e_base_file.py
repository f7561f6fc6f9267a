"""End to end with the base model from a file: `bash scripts/finetune.sh --base_gguf FILE` (a tiny Qwen2 GGUF
written by gguf-py, carrying SmolLM2's tokenizer) and `--base_hf DIR` (a tiny transformers Qwen2 directory with
Qwen2-layout tokenizer files). Without --config the run derives its YAML from the file (dims, biases, theta,
eps, tying, ids, tokenizer), converts the file once into .cache/base/, trains 2 steps and evaluates 2 items
with ChatML, Qwen2's default template."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from research.llama3.config.model_config import read_config
from research.run.base_file import converted_checkpoint, file_key
from research.rundir.layout import RunLayout
from research.rundir.manifest import Manifest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e
STAGES = ("data", "preprocess", "mindrecord", "base", "train", "eval_math_base", "eval_math_lora", "report")


def _run(option, path, run, tmp_path):
    env = {**os.environ, "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")}
    # cot targets: no few-shot base prompt; 200 generated items of which 2 are held out
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "finetune.sh"), option, str(path), "--stop_step", "2",
                           "--eval_size", "2", "--corpus_size", "200", "--target_style", "cot",
                           "--max_new_tokens", "64", "--run_dir", str(run)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return Manifest.require(RunLayout(run))


@pytest.mark.parametrize("source", ["gguf", "hf"])
def test_base_file_run_derives_its_yaml_converts_once_and_trains(source, tiny_qwen2_gguf, tiny_qwen2_hf_dir,
                                                                 tmp_path):
    path = tiny_qwen2_gguf if source == "gguf" else tiny_qwen2_hf_dir
    ckpt = converted_checkpoint(source, file_key(source, path))
    run = tmp_path / "run"
    try:
        manifest = _run(f"--base_{source}", path, run, tmp_path)
        assert {name: rec["status"] for name, rec in manifest.stages.items()} == dict.fromkeys(STAGES, "done")
        s = manifest.settings
        assert (s["base_source"], s["base_file"], s["template"]) == (source, str(path), "chatml")
        assert s["config"] == str(RunLayout(run).base_config) and s["base_file_key"] == file_key(source, path)
        assert manifest.stages["base"]["inputs"][source] == {"path": str(path), "key": s["base_file_key"]}

        config = read_config(s["config"])
        mc = config["model"]["model_config"]
        assert (mc["hidden_size"], mc["num_layers"], mc["qkv_has_bias"], mc["theta"], mc["rms_norm_eps"],
                mc["tie_word_embeddings"]) == (64, 2, True, 1e6, 1e-6, True)
        assert mc["seq_length"] == 256 and mc["pet_config"]["lora_rank"] == 16  # the CPU YAML's training keys
        tokenizer = config["processor"]["tokenizer"]
        if source == "gguf":
            # SmolLM2's tokenizer: pad == eos (<|im_end|>), so the YAML's pad 0 (<|endoftext|>) stays
            assert tokenizer == {"type": "GGUFTokenizer", "gguf_file": str(path)}
            assert (mc["vocab_size"], mc["bos_token_id"], mc["eos_token_id"], mc["pad_token_id"]) == (49152, 1, 2, 0)
        else:
            assert tokenizer == {"type": "Qwen2Tokenizer", "vocab_file": str(path)}
            vocab = json.loads((path / "tokenizer.json").read_text())["added_tokens"]
            ids = {t["content"]: t["id"] for t in vocab}
            assert (mc["vocab_size"], mc["eos_token_id"], mc["pad_token_id"]) == \
                (512, ids["<|im_end|>"], ids["<|endoftext|>"])

        import mindspore as ms

        base = ms.load_checkpoint(str(ckpt))
        assert "lm_head.weight" not in base and tuple(base["model.layers.0.attention.wq.bias"].shape) == (64,)
        losses = [json.loads(line)["loss"] for line in (run / "loss.jsonl").read_text().splitlines()]
        assert len(losses) == 2 and all(np.isfinite(losses))
        metrics = json.loads((run / "eval" / "math_lora" / "metrics.json").read_text())
        assert metrics["overall"]["total"] == 2 and metrics["source"]["template"] == "chatml"
    finally:
        ckpt.unlink(missing_ok=True)  # the cache entry of a file that lives in tmp_path
