"""research.llama3.config.config_check: MindFormers YAMLs checked against the MindFormers 1.9 schema (derived from
MindFormers' registry and config classes) before any heavy work, base_config resolved (issue 16 item 10)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from preprocess.cli import run_main
from research.llama3.config import config_schema
from research.llama3.config.config_check import (ConfigError, Problem, check_config, model_yaml, resolved_config,
                                                 validate_config)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml"
MINDFORMERS_YAMLS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if p.parent.name != "preprocess")


def _child(tmp_path, text, name="child.yaml", base=TINY):
    path = tmp_path / name
    path.write_text((f"base_config: {base}\n" if base else "") + text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", MINDFORMERS_YAMLS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_yaml_passes(path):
    assert check_config(path) == []


def test_shipped_yamls_found():
    assert len(MINDFORMERS_YAMLS) >= 4 and TINY in MINDFORMERS_YAMLS


@pytest.mark.parametrize("text,line,key_path,message", [
    ("model:\n  model_config:\n    pet_config:\n      lora_rnak: 16\n", 5, "model.model_config.pet_config.lora_rnak",
     "unknown key in lora pet_config (did you mean 'lora_rank'?)"),
    ("model:\n  model_config:\n    pet_config:\n      pet_type: lroa\n", 5, "model.model_config.pet_config.pet_type",
     "'lroa' is not a PET type MindFormers builds (one of lora, prefixtuning, ptuning2, slora; any other value "
     "trains the whole model) (did you mean 'lora'?)"),
    ("runer_config:\n  epochs: 2\n", 2, "runer_config",
     "unknown key in the MindFormers config (did you mean 'runner_config'?)"),
    ("model:\n  model_config:\n    seq_lenght: 256\n", 4, "model.model_config.seq_lenght",
     "unknown key in LlamaConfig's parameters (did you mean 'seq_length'?)"),
    ("runner_config:\n  epoch: 2\n", 3, "runner_config.epoch", "unknown key in 'runner_config' (did you mean 'epochs'?)"),
    ("optimizer:\n  type: AdamW\n  weight_decy: 0.1\n", 4, "optimizer.weight_decy",
     "unknown key in AdamW's parameters (did you mean 'weight_decay'?)"),
    ("optimizer:\n  type: AdamWW\n", 3, "optimizer.type",
     "'AdamWW' is not a registered MindFormers optimizer class (did you mean 'AdamW'?)"),
    ("callbacks:\n  - type: MFLossMonitor\n  - type: CheckpointMonitr\n", 4, "callbacks[1].type",
     "'CheckpointMonitr' is not a registered MindFormers callback class (did you mean 'CheckpointMonitor'?)"),
    ("callbacks:\n  - type: LossJsonlMonitor\n    pth: x\n", 4, "callbacks[0].pth",
     "unknown key in LossJsonlMonitor's parameters (did you mean 'path'?)"),
    ("context:\n  devce_target: CPU\n", 3, "context.devce_target", "unknown key in 'context' (did you mean 'device_target'?)"),
    ("run_mode: finetun\n", 2, "run_mode",
     "'finetun' is not one of train, eval, predict, finetune, predict_with_train_model (did you mean 'finetune'?)"),
    ("train_dataset:\n  batch_sise: 2\n", 3, "train_dataset.batch_sise",
     "unknown key in CausalLanguageModelDataset's dataset_config (did you mean 'batch_size'?)"),
    ("processor:\n  tokenizer:\n    type: GGUFTokeniser\n", 4, "processor.tokenizer.type",
     "'GGUFTokeniser' is not a known tokenizer (did you mean 'GGUFTokenizer'?)"),
])
def test_misspelt_keys_named_with_file_line_path_and_suggestion(tmp_path, text, line, key_path, message):
    child = _child(tmp_path, text)
    assert check_config(child) == [Problem(str(child), line, key_path, message)]


def test_typo_in_a_base_file_is_reported_where_it_is(tmp_path):
    base = _child(tmp_path, "model:\n  model_config:\n    pet_config:\n      lora_rnak: 16\n", name="base.yaml")
    child = _child(tmp_path, "seed: 3\n", base="base.yaml")
    problems = check_config(child)
    assert [(p.file, p.line, p.path) for p in problems] == [
        (str(base), 5, "model.model_config.pet_config.lora_rnak")]
    with pytest.raises(ConfigError) as err:
        validate_config(child)
    assert f"{child} does not match the MindFormers 1.9 schema (1 problem):\n  {base}:5: " in str(err.value)


def test_base_config_resolved_before_checking(tmp_path):
    child = _child(tmp_path, "model:\n  model_config:\n    pet_config:\n      lora_rank: 16\n")
    assert check_config(child) == []
    config = resolved_config(child)
    pet = config["model"]["model_config"]["pet_config"]
    assert (pet["lora_rank"], pet["lora_alpha"], pet["pet_type"]) == (16, 16, "lora")  # child over base
    assert config["runner_config"]["batch_size"] == 4  # from the base only


def test_effective_config_written_by_finetune_passes(tmp_path):
    """scripts/eval.sh checks RUN/config.yaml, MindFormers' filled-in config as finetune.py writes it."""
    import yaml
    from mindformers import MindFormerConfig

    from research.llama3.train.finetune import _plain

    config = MindFormerConfig(str(TINY))
    config.callbacks = [*config.callbacks, {"type": "LossJsonlMonitor", "path": "x/loss.jsonl", "tokens_per_step": 512,
                                            "initial_step": 0}, {"type": "TrainCallBack", "stop_step": 3}]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_plain(config.to_dict()), sort_keys=False), encoding="utf-8")
    assert check_config(path) == []


def test_allowed_keys_come_from_the_mindformers_registry():
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister

    llama = config_schema.class_keys("config", "LlamaConfig")
    assert {"seq_length", "use_rope_slice", "pet_config", "checkpoint_name_or_path", "type"} <= llama
    assert "seq_lenght" not in llama

    class ProbeCallbackForSchemaTest:
        def __init__(self, probe_interval: int = 1, **kwargs):
            pass

    MindFormerRegister.register_cls(ProbeCallbackForSchemaTest, module_type=MindFormerModuleType.CALLBACK)
    config_schema.registered.cache_clear()
    assert config_schema.class_keys("callback", "ProbeCallbackForSchemaTest") == {"type", "probe_interval"}


def test_cli_exit_status_and_messages(tmp_path):
    bad = _child(tmp_path, "runer_config:\n  epochs: 2\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "research.llama3.config.config_check", str(TINY), str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert f"ok: {TINY}" in proc.stdout
    assert f"error: {bad}:2: runer_config: unknown key in the MindFormers config (did you mean 'runner_config'?)" \
        in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "research.llama3.config.config_check", str(broken), str(tmp_path / "no.yaml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert f"error: {broken}: ValueError: YAML parse error" in proc.stderr and f'"{broken}", line 1, column 8' in proc.stderr
    assert f"config not found: {tmp_path / 'no.yaml'}" in proc.stderr


def test_finetune_refuses_before_reading_data(tmp_path, capsys):
    from research.llama3.train import finetune

    bad = _child(tmp_path, "model:\n  model_config:\n    seq_lenght: 256\n")
    # The dataset exists (empty): the YAML must be refused before it is read.
    (tmp_path / "unread.mindrecord").write_bytes(b"")
    rc = run_main(finetune.main, ["--config", str(bad), "--train_dataset", str(tmp_path / "unread.mindrecord"),
                                  "--output_dir", str(tmp_path / "out"), "--run_dir", str(tmp_path / "run")])
    assert rc == 2
    assert f"{bad}:4: model.model_config.seq_lenght: unknown key in LlamaConfig's parameters (did you mean " \
           f"'seq_length'?)" in capsys.readouterr().err


def test_eval_cli_config_checked_when_parsed(tmp_path, capsys):
    from eval import math as math_cli

    bad = _child(tmp_path, "model:\n  model_config:\n    pet_config:\n      pet_type: lroa\n")
    with pytest.raises(SystemExit) as exc:
        math_cli.build_parser().parse_args(["--items", "i.jsonl", "--load_checkpoint", "b.ckpt", "--config", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --config:" in err and "'lroa' is not a PET type" in err and "(did you mean 'lora'?)" in err


def test_mindrecord_config_checked(tmp_path):
    bad = _child(tmp_path, "model:\n  model_config:\n    pet_config:\n      lora_rnak: 16\n")
    conv = tmp_path / "conv.json"
    conv.write_text(json.dumps([{"id": "a", "conversations": [{"from": "human", "value": "1+1?"},
                                                               {"from": "gpt", "value": "2"}]}]), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "research.llama3.records.mindrecord", "--input_glob", str(conv), "--config", str(bad),
                           "--seq_length", "32", "--output_file", str(tmp_path / "t.mindrecord")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "did you mean 'lora_rank'?" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "t.mindrecord").exists()


def test_finetune_sh_stops_before_any_data_work(tmp_path):
    import os
    import shutil

    bad = _child(tmp_path, "runer_config:\n  epochs: 2\n")
    run_id = f"pytest-config-check-{os.getpid()}"
    run = ROOT / "logs" / run_id
    try:
        proc = subprocess.run(["bash", str(ROOT / "scripts" / "finetune.sh"), "--config", str(bad), "--run_id", run_id],
                              cwd=tmp_path, env={**os.environ, "LOCAL_DEFAULT_PATH": str(tmp_path / "mf")},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert f"error: {bad}:2: runer_config: unknown key in the MindFormers config (did you mean " \
               f"'runner_config'?)" in proc.stderr
        assert "1/7 data" not in proc.stdout and not run.exists()  # nothing of the run was started
    finally:
        shutil.rmtree(run, ignore_errors=True)


@pytest.mark.parametrize("text,key_path,message", [
    ("callbacks:\n  type: MFLossMonitor\n", "callbacks", "must be a list of mappings with a 'type', got dict"),
    ("callbacks:\n  - MFLossMonitor\n", "callbacks[0]", "must be a mapping with a 'type', got str"),
    ("optimizer:\n  type: [AdamW]\n", "optimizer.type", "no 'type' naming a registered MindFormers optimizer class"),
])
def test_malformed_sections_reported_not_crashing(tmp_path, text, key_path, message):
    problems = check_config(_child(tmp_path, text, base=None))
    assert [(p.path, p.message) for p in problems] == [(key_path, message)]


def test_base_that_cannot_be_merged(tmp_path):
    child = _child(tmp_path, "callbacks:\n  type: MFLossMonitor\n")
    with pytest.raises(ValueError, match=f"{child}: cannot be merged with its base_config"):
        check_config(child)


def test_model_yaml_is_checked_and_resolved_once_while_unchanged(tmp_path):
    path = _child(tmp_path, "model:\n  model_config:\n    seq_length: 64\n")
    first = model_yaml(path)
    assert model_yaml(path) is first and first.model_config["seq_length"] == 64
    assert first.model_config["num_layers"] == resolved_config(TINY)["model"]["model_config"]["num_layers"]
    before = os.stat(path).st_mtime_ns
    path.write_text(path.read_text().replace("seq_length: 64", "seq_lenght: 64"))
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a new mtime even where the clock is coarse
    with pytest.raises(ConfigError, match="seq_lenght"):
        model_yaml(path)
