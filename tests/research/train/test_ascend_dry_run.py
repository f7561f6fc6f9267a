"""Every shipped Ascend YAML dry-runs on CPU through the user's own entry points (issue 13).

``research.llama3.train.dry_run`` maps only the device-bound keys (``DRY_RUN_KEYS``, documented in
docs/ascend.md); the optimizer, runner wrapper and loss scale, LR schedule, callbacks, checkpoint,
dataset and sink settings, LoRA config, tokenizer and pad ids are the YAML's. Each finetune YAML then
trains two steps through ``research/llama3/train/finetune.py`` on a real Llama 3-tokenized MindRecord;
the predict and base-eval YAMLs generate through ``eval.math``/``eval.base --backend mindformers``.

What no CPU can run -- semi_auto_parallel with full_batch (MindSpore 2.9: "Invalid backend: CPU"),
checkpoint transformation across ranks -- is built and checked as far as MindFormers goes without
devices (``test_parallel_settings_as_far_as_cpu_allows``); docs/ascend.md lists what remains.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from research.llama3.config.config_check import model_yaml
from research.llama3.train.dry_run import DRY_RUN_KEYS, changed_keys, cpu_dry_run, write_dry_run_yaml
from research.llama3.config.model_config import eval_backend_for, read_config, read_model_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
LLAMA3 = ROOT / "configs" / "llama3_8b"
QWEN2_5 = ROOT / "configs" / "qwen2_5"
ASCEND = sorted(LLAMA3.glob("*.yaml")) + sorted(QWEN2_5.glob("*.yaml"))
FINETUNE = [p for p in ASCEND if p.name.startswith("finetune_")]
MULTI_CARD = [p for p in FINETUNE if read_config(p)["use_parallel"]]
OLD_OPTIMIZER = "FP32StateAdamWeightDecay"  # the contest's name; not registered in MindFormers >= 1.6


def _ids(path):
    return f"{path.parent.name}/{path.stem}"


def _run(args, env, timeout=900, check=True):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{args[:2]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


# --- the override function ---

def test_override_list_is_the_documented_one():
    """docs/ascend.md's table of dry-run keys is exactly DRY_RUN_KEYS: a new key cannot hide behind it."""
    text = (ROOT / "docs" / "ascend.md").read_text(encoding="utf-8")
    table = text.split("<!-- dry-run-keys -->")[1]
    documented = re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)
    assert len(documented) == len(set(documented))
    assert sorted(documented) == sorted(DRY_RUN_KEYS)


@pytest.mark.parametrize("path", ASCEND, ids=_ids)
def test_dry_run_changes_only_the_listed_keys(path):
    config = read_config(path)
    dry = cpu_dry_run(config)
    changed = changed_keys(config, dry)
    if config.get("train_dataset_task", {}).get("dataset_config") is config.get("train_dataset"):
        # the YAML's `dataset_config: *train_dataset` alias: the same mapping, checked as train_dataset
        changed = {k for k in changed if not k.startswith("train_dataset_task.dataset_config.")}
    assert changed <= set(DRY_RUN_KEYS)
    assert config == read_config(path), "the YAML mapping itself is not modified"
    for section in ("optimizer", "runner_wrapper", "lr_schedule", "callbacks", "processor", "recompute_config"):
        assert dry.get(section) == config.get(section), section
    for key in ("epochs", "sink_mode", "sink_size"):
        assert (dry.get("runner_config") or {}).get(key) == (config.get("runner_config") or {}).get(key), key
    mc, dry_mc = config["model"]["model_config"], dry["model"]["model_config"]
    for key in ("pet_config", "seq_length", "vocab_size", "bos_token_id", "eos_token_id", "pad_token_id",
                "use_past", "max_position_embedding", "theta"):
        assert dry_mc.get(key) == mc.get(key), key
    assert dry["context"]["device_target"] == "CPU" and dry_mc["compute_dtype"] == "float32"
    assert dry_mc["num_heads"] // dry_mc["n_kv_heads"] == mc["num_heads"] // mc["n_kv_heads"]  # GQA kept


def test_old_optimizer_name_is_not_registered_and_adamw_is():
    """Bug 1: MindFormers 1.9 has no FP32StateAdamWeightDecay; the YAMLs' AdamW builds with their settings."""
    import mindspore as ms
    from mindformers.core import build_optim

    params = [ms.Parameter(ms.Tensor(np.zeros((2, 2), np.float32)), name="w")]
    with pytest.raises(Exception, match=OLD_OPTIMIZER):
        build_optim({"type": OLD_OPTIMIZER, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8},
                    default_args={"params": params, "learning_rate": 1e-4})
    for path in FINETUNE:
        assert read_config(path)["optimizer"]["type"] != OLD_OPTIMIZER, path.name


def test_eval_backend_follows_the_yaml_device(tmp_path):
    """Bug 3: the runner asks eval_backend_for which backend keeps the model on the YAML's device."""
    assert {eval_backend_for(p) for p in ASCEND} == {"mindformers"}
    assert eval_backend_for(ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml") == "transformers"
    dry = tmp_path / "dry.yaml"
    write_dry_run_yaml(str(ASCEND[0]), str(dry))
    assert eval_backend_for(dry) == "transformers"


# --- two training steps of every finetune YAML ---

@pytest.fixture(scope="module")
def dry_work(llama3_tokenizer_dir, qwen2_tokenizer_dir, tmp_path_factory):
    """Work dir, CLI environment and the tokenizer file of each YAML's ``processor.tokenizer.type`` (Meta's
    Llama 3 tokenizer.model; a Qwen2-layout vocab.json, see ``qwen2_tokenizer_dir``); 32 conversations to train on."""
    import os

    work = tmp_path_factory.mktemp("ascend_dry")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOCAL_DEFAULT_PATH": str(work / "mf"), "GLOG_v": "3"}
    convs = [{"id": f"c{i}", "conversations": [
        {"from": "human", "value": f"计算 {i}.25 + 1.50 等于多少？"},
        {"from": "gpt", "value": f"{i}.25 + 1.50 = {i + 1}.75"}]} for i in range(32)]
    (work / "conv.json").write_text(json.dumps(convs, ensure_ascii=False), encoding="utf-8")
    return work, env, {"Llama3Tokenizer": llama3_tokenizer_dir / "tokenizer.model",
                       "Qwen2Tokenizer": qwen2_tokenizer_dir / "vocab.json"}


def _tokenizer_type(path):
    return read_config(path)["processor"]["tokenizer"]["type"]


@pytest.fixture(scope="module")
def dry_runner(dry_work):
    """``run(yaml_path) -> (dry yaml, run dir, finetune stdout+stderr, records, base)``: the dry-run YAML, a MindRecord at
    its seq_length made with ``--vocab_file`` (and ``--template chatml`` for Qwen2), one random base per
    family (same reduced dims within one), and two steps of ``research/llama3/train/finetune.py``; memoised per YAML."""
    work, env, tokenizers = dry_work
    done = {}

    def run(path):
        if path in done:
            return done[path]
        # configs/llama3/ and configs/qwen2_5/ share file names: the family folder keeps their runs apart
        name = f"{path.parent.name}_{path.stem}"
        dry = work / f"dry_{name}.yaml"
        config = write_dry_run_yaml(str(path), str(dry))
        seq = config["model"]["model_config"]["seq_length"]
        kind = _tokenizer_type(path)
        qwen2 = kind == "Qwen2Tokenizer"
        records = work / f"train_{kind}_{seq}.mindrecord"
        if not records.exists():
            _run(["-m", "research.llama3.records.mindrecord", "--input_glob", work / "conv.json", "--config", dry,
                  "--vocab_file", tokenizers[kind], "--seq_length", seq, "--output_file", records,
                  *(["--template", "chatml"] if qwen2 else [])], env)
        mc = config["model"]["model_config"]
        base = work / f"base_{kind}_{mc['hidden_size']}.ckpt"
        if not base.exists():
            _run(["-m", "research.llama3.checkpoint.random_init", "--config", dry, "--output", base], env)
        run_dir = work / name
        proc = _run(["-m", "research.llama3.train.finetune", "--config", dry, "--train_dataset", records,
                     "--load_checkpoint", base, "--output_dir", run_dir / "output", "--run_dir", run_dir,
                     "--stop_step", "2"], env)
        done[path] = (dry, run_dir, proc.stdout + proc.stderr, records, base)
        return done[path]

    return run


@pytest.mark.parametrize("path", FINETUNE, ids=_ids)
def test_finetune_dry_run_two_steps(path, dry_runner, dry_work):
    """Two steps through finetune.py with the YAML's optimizer, wrapper, loss scale, LR schedule,
    callbacks, checkpoint, sink and LoRA settings; with FP32StateAdamWeightDecay it stops at the optimizer."""
    import mindspore as ms
    from mindspore.mindrecord import FileReader

    yaml_config = read_config(path)
    dry, run_dir, output, records, _ = dry_runner(path)
    dry_config = yaml.safe_load(dry.read_text(encoding="utf-8"))
    mc = dry_config["model"]["model_config"]

    # tokenizer and pad ids of the YAML in the records: BOS first (Qwen2: <|endoftext|>, the stand-in
    # tokenizer's id), padded with pad_token_id
    seq = mc["seq_length"]
    reader = FileReader(str(records))
    record = next(reader.get_next())
    reader.close()
    if _tokenizer_type(path) == "Qwen2Tokenizer":
        from research.llama3.tokenizers.tokenizer import build_tokenizer

        tok = build_tokenizer({"type": "Qwen2Tokenizer", "vocab_file": str(dry_work[2]["Qwen2Tokenizer"])})
        assert record["input_ids"][0] == tok.hf.convert_tokens_to_ids("<|endoftext|>") == tok.pad_id
        assert tok.eos_id == tok.hf.convert_tokens_to_ids("<|im_end|>") != tok.pad_id
        assert (mc["pad_token_id"], mc["eos_token_id"], mc["qkv_has_bias"]) == (151643, 151645, True)
    else:
        assert record["input_ids"][0] == mc["bos_token_id"] == 128000
    assert len(record["input_ids"]) == seq + 1 and record["input_ids"][-1] == mc["pad_token_id"]

    # the effective config finetune.py ran: the YAML's sections, device keys aside
    effective = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    assert effective["optimizer"] == yaml_config["optimizer"] and effective["optimizer"]["type"] == "AdamW"
    assert effective["model"]["model_config"]["pet_config"] == yaml_config["model"]["model_config"]["pet_config"]
    assert {k: v for k, v in effective["lr_schedule"].items() if k != "total_steps"} == \
        {k: v for k, v in yaml_config["lr_schedule"].items() if k != "total_steps"}
    yaml_callbacks = yaml_config["callbacks"]
    assert [c for c in effective["callbacks"] if c["type"] in ("MFLossMonitor", "CheckpointMonitor")] == yaml_callbacks
    runner = yaml_config["runner_config"]
    assert f"sink_size:{runner['sink_size']}" in output and runner["sink_mode"] is True  # MindFormers' own log

    rows = [json.loads(line) for line in (run_dir / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) for r in rows)
    # CosineWithWarmUpLR over the 2 steps run (warm-up 0.03 x 2 -> none): the YAML's rate, then half of it
    lr = yaml_config["lr_schedule"]["learning_rate"]
    assert rows[0]["lr"] == pytest.approx(lr, rel=1e-5) and rows[1]["lr"] == pytest.approx(lr / 2, rel=1e-5)
    batch = dry_config["runner_config"]["batch_size"]
    assert rows[1]["tokens_per_s"] == pytest.approx(batch * seq / rows[1]["step_s"], rel=0.05, abs=1.0)

    prefix = yaml_callbacks[1]["prefix"]
    full = sorted((run_dir / "output" / "checkpoint" / "rank_0").glob("*.ckpt"))
    assert [p.name for p in full] == [f"{prefix}_rank_0-1_2.ckpt"]
    state = ms.load_checkpoint(str(full[0]))
    assert int(state["step_num"].asnumpy()) == 2
    lora = [k for k in state if k.startswith("model.") and "mindpet_delta" in k]
    assert len(lora) == 2 * 2 * mc["num_layers"]  # wq, wv x lora_a, lora_b per layer
    assert all(f"adam_m.{k}" in state and f"adam_v.{k}" in state for k in lora)  # AdamW's moments
    scale = yaml_config["runner_wrapper"]["scale_sense"]
    expected_scale = scale["loss_scale_value"] if isinstance(scale, dict) else scale
    assert float(state["scale_sense"].asnumpy()) == expected_scale  # the wrapper's loss scale, no overflow
    adapter = ms.load_checkpoint(str(run_dir / "lora.ckpt"))
    rank = yaml_config["model"]["model_config"]["pet_config"]["lora_rank"]
    assert tuple(adapter["model.layers.0.attention.wq.mindpet_delta_lora_a"].shape) == (rank, mc["hidden_size"])
    assert np.abs(adapter["model.layers.0.attention.wq.mindpet_delta_lora_b"].asnumpy()).max() > 0  # trained


@pytest.mark.parametrize("path", MULTI_CARD, ids=_ids)
def test_parallel_settings_as_far_as_cpu_allows(path, tmp_path, monkeypatch):
    """semi_auto_parallel cannot compile on CPU. What can be built without devices is: MindSpore's
    auto-parallel context from the YAML's ``parallel`` section, MindFormers' parallel config objects,
    and MindFormers' own global-batch rule (batch_size x data_parallel under full_batch)."""
    from types import SimpleNamespace

    import mindspore as ms
    from mindformers import MindFormerConfig
    from mindformers.core.parallel_config import build_parallel_config
    from mindformers.trainer.base_trainer import BaseTrainer

    monkeypatch.chdir(tmp_path)
    config = MindFormerConfig(str(path))
    cards = int(re.search(r"_(\d+)p", path.name).group(1))
    parallel = {k: v for k, v in config.parallel.to_dict().items() if k != "parallel_mode"}
    try:
        ms.set_auto_parallel_context(parallel_mode=["data_parallel", "semi_auto_parallel"][config.parallel.parallel_mode],
                                     device_num=cards, **parallel)
        assert ms.get_auto_parallel_context("parallel_mode") == "semi_auto_parallel"
        assert ms.get_auto_parallel_context("full_batch") is True
        build_parallel_config(config)
        pc = config.parallel_config
        assert pc.data_parallel * pc.model_parallel * pc.pipeline_stage == cards
        trainer = SimpleNamespace(config=config, get_pipeline_stages=lambda: pc.pipeline_stage)
        BaseTrainer._check_global_batch_size_for_auto_parallel(trainer)
        assert trainer.global_batch_size == (64 if "contest" in path.name else 16)
    finally:
        ms.reset_auto_parallel_context()
    # One complete checkpoint in, sliced by MindFormers (auto_trans_ckpt) on a fresh start.
    assert config.auto_trans_ckpt is True


# --- bug 2: --resume on 4p/8p ---

def test_resume_turns_auto_trans_ckpt_off(tmp_path):
    """Resuming loads the per-rank checkpoints of output_dir, already sliced: transforming them again
    is what MindFormers refuses ("src_strategy should not be None when src_checkpoint is sliced")."""
    import mindspore as ms
    from mindformers.tools.ckpt_transform.transform_checkpoint import TransformCkpt

    from research.llama3.train.finetune import build_config

    records = tmp_path / "train.mindrecord"
    _write_tiny_mindrecord(records)
    output = tmp_path / "output"
    for rank in range(4):
        folder = output / "checkpoint" / f"rank_{rank}"
        folder.mkdir(parents=True)
        name = f"llama3_8b_rank_{rank}-1_6.ckpt"
        ms.save_checkpoint([{"name": "step_num", "data": ms.Tensor(np.array(6, np.int64))}], str(folder / name))
        (folder / "meta.json").write_text(json.dumps({"last_epoch": 1, "last_step": 6, "last_ckpt_file": name}))
    base = tmp_path / "base.ckpt"
    base.write_bytes(b"")
    path = str(LLAMA3 / "finetune_lora_910b_4p.yaml")

    fresh = build_config(path, str(records), str(base), str(output), str(tmp_path / "run"))
    assert fresh.auto_trans_ckpt is True and fresh.load_checkpoint == str(base)
    resumed = build_config(path, str(records), str(base), str(output), str(tmp_path / "run"), resume=True)
    assert resumed.resume_training is True and resumed.load_checkpoint == str(output / "checkpoint")
    assert resumed.auto_trans_ckpt is False
    with pytest.raises(ValueError, match="src_strategy.*should not be None"):
        TransformCkpt.check_src_checkpoint_and_strategy(resumed.load_checkpoint, None)


def _write_tiny_mindrecord(path):
    from mindspore.mindrecord import FileWriter

    writer = FileWriter(str(path), shard_num=1, overwrite=True)
    writer.add_schema({"input_ids": {"type": "int32", "shape": [-1]}, "labels": {"type": "int32", "shape": [-1]}})
    writer.write_raw_data([{"input_ids": np.ones(257, np.int32), "labels": np.ones(257, np.int32)}] * 4)
    writer.commit()


# --- bug 5: multi-node without --node_rank ---

def test_multi_node_without_node_rank_is_refused(tmp_path, free_port):
    proc = subprocess.run(
        ["bash", ROOT / "scripts" / "msrun_launcher.sh", "--worker_num", "2", "--local_worker_num", "1",
         "--master_port", str(free_port()), "--cluster_time_out", "5", "--log_dir", tmp_path / "msrun", "--",
         "--config", LLAMA3 / "finetune_lora_910b_4p.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "needs --node_rank" in proc.stderr and "SHARED_PATHS" in proc.stderr
    assert not (tmp_path / "msrun" / "scheduler.log").exists()  # msrun never started


# --- bug 6: the YAML's device before use_past ---

def test_yaml_device_is_applied_before_use_past_is_chosen(tiny_train_data, tmp_path):
    """An Ascend YAML on this CPU host is refused up front; before the fix the device MindSpore
    happened to have (CPU) decided use_past and the Ascend YAML silently ran as a CPU model."""
    from eval.mf_generate import MindFormersLM

    work, _ = tiny_train_data
    config = read_config(ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml")
    config["context"]["device_target"] = "Ascend"
    config["model"]["model_config"]["use_past"] = True
    path = tmp_path / "tiny_ascend.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="device_target 'Ascend' of the YAML cannot run here"):
        MindFormersLM.from_yaml(model_yaml(str(path)), str(work / "base.ckpt"))


# --- predict and base-eval YAMLs: one generation through the eval CLIs ---

def test_predict_dry_run_generates_through_eval_math(dry_runner, dry_work):
    """The predict YAML (base + the LoRA trained by the 1-card dry run) through eval.math --backend mindformers."""
    work, env, tokenizers = dry_work
    tokenizer = tokenizers["Llama3Tokenizer"]
    _, run_dir, _, _, base = dry_runner(LLAMA3 / "finetune_lora_910b_1p.yaml")
    dry = work / "dry_predict.yaml"
    write_dry_run_yaml(str(LLAMA3 / "predict_lora_910b_1p.yaml"), str(dry))
    items = work / "math.jsonl"
    items.write_text(json.dumps({"id": "m1", "category": "add", "problem": "计算 1.25 + 1.50 等于多少？",
                                 "answer": "2.75"}, ensure_ascii=False) + "\n", encoding="utf-8")
    out = work / "eval_math"
    _run(["-m", "eval.math", "--items", items, "--config", dry, "--load_checkpoint", base,
          "--lora_checkpoint", run_dir / "lora.ckpt", "--vocab_file", tokenizer, "--backend", "mindformers",
          "--max_new_tokens", "3", "--batch_size", "1", "--output_dir", out], env)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["source"]["backend"] == "mindformers" and metrics["source"]["use_past"] is None
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["m1"] and isinstance(rows[0]["generation"], str)


def test_eval_base_dry_run_generates_through_eval_base(dry_runner, dry_work):
    """The base-eval YAML through eval.base --backend mindformers. On CPU generation recomputes a
    ``[rows, seq_length]`` buffer per token; the CLI's --seq_length sets that buffer (its default, the
    YAML's 8192, is the KV-cache limit on Ascend and would build 8192 x 8192 attention on the host)."""
    work, env, tokenizers = dry_work
    tokenizer = tokenizers["Llama3Tokenizer"]
    base = dry_runner(LLAMA3 / "finetune_lora_910b_1p.yaml")[4]
    dry = work / "dry_eval_base.yaml"
    write_dry_run_yaml(str(LLAMA3 / "eval_base_910b_1p.yaml"), str(dry))
    squad = work / "squad.json"
    squad.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{
        "context": "The Broncos won Super Bowl 50.",
        "qas": [{"id": "q1", "question": "Who won Super Bowl 50?",
                 "answers": [{"text": "The Broncos", "answer_start": 0}]}]}]}]}), encoding="utf-8")
    out = work / "eval_base"
    _run(["-m", "eval.base", "--squad", squad, "--config", dry, "--load_checkpoint", base,
          "--vocab_file", tokenizer, "--backend", "mindformers", "--max_new_tokens", "2", "--batch_size", "1",
          "--seq_length", "256", "--output_dir", out], env)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["count"] == 1 and metrics["missing"] == 0 and metrics["source"]["backend"] == "mindformers"


# --- bug 4: SQuAD prompts and the base-eval YAML's seq_length ---

def test_every_squad_prompt_fits_the_eval_base_yaml(shared_file, llama3_tokenizer_dir):
    """eval.base refuses a run whose prompts do not fit seq_length with max_new_tokens (64) before it
    generates; at seq_length 512 that was 17 of the 913 first questions, at the contest's 8192 none."""
    from eval.squad import read_first_questions, render_prompt
    from research.llama3.tokenizers.tokenizer import build_tokenizer

    items = read_first_questions(shared_file("squad_v1.1_partial/dev-v1.1.json"))
    tokenizer = build_tokenizer({"type": "Llama3Tokenizer"}, str(llama3_tokenizer_dir / "tokenizer.model")).hf
    lengths = np.array([len(ids) for ids in tokenizer([render_prompt(i) for i in items])["input_ids"]])
    seq_length = read_model_config(LLAMA3 / "eval_base_910b_1p.yaml")["seq_length"]
    assert len(items) == 913 and int((lengths + 64 > 512).sum()) == 17
    assert int((lengths + 64 > seq_length).sum()) == 0
