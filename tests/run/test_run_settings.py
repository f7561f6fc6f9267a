"""The runner's option rules (research.run.settings): no silent overrides, each conflict named."""
import pytest

from research.run.__main__ import main as run_main
from research.rundir.layout import DEFAULT_CONFIG, ROOT, SMOKE_CONFIG, SMOKE_CONFIG_DP2
from research.run.settings import RunSettings, SettingsError, resolve

pytestmark = pytest.mark.unit

LLAMA3_1P = ROOT / "configs" / "llama3_8b" / "finetune_lora_910b_1p.yaml"


def test_defaults_read_seq_length_and_template_from_one_place():
    s = resolve({})
    assert s.config == str(DEFAULT_CONFIG) and s.seq_length == 256  # the YAML's model_config.seq_length
    assert (s.stop_step, s.eval_size, s.num_samples, s.max_new_tokens) == (150, 100, 3000, 192)
    assert s.template == "vicuna_nosys" and s.packing  # the short template, packed records
    assert s.base_source == "smollm2_gguf" and s.backend == "mindformers" and s.eval_backend == "transformers"


def test_smoke_sets_defaults_and_an_explicit_stop_step_wins():
    smoke = resolve({"smoke": True})
    assert (smoke.config, smoke.seq_length, smoke.stop_step, smoke.num_samples) == (str(SMOKE_CONFIG), 128, 8, 400)
    assert smoke.base_source == "random_init" and smoke.cot_style == "steps"  # the math job's digits are not the smoke's
    assert resolve({"smoke": True, "stop_step": 3}).stop_step == 3
    assert resolve({"smoke": True, "stop_step": 0}).stop_step == 0  # 0 (full epochs) is explicit too
    assert resolve({"smoke": True, "worker_num": 2}).config == str(SMOKE_CONFIG_DP2)
    assert resolve({"smoke": True, "config": str(DEFAULT_CONFIG)}).config == str(DEFAULT_CONFIG)


@pytest.mark.parametrize("option", [{"resume": True}, {"save_steps": 5}])
def test_torch_backend_rejects_resume_and_save_steps(option):
    name = next(iter(option))
    with pytest.raises(SettingsError, match=f"--{name} is not supported with --backend torch"):
        resolve({"backend": "torch", **option})
    with pytest.raises(SettingsError, match=f"--{name} is not supported"):
        resolve({"device": "cuda", **option})  # cuda means torch


def test_cuda_with_an_explicit_mindformers_backend_is_an_error():
    assert resolve({"device": "cuda"}).backend == "torch"
    with pytest.raises(SettingsError, match="--device cuda .* --backend mindformers"):
        resolve({"device": "cuda", "backend": "mindformers"})


def test_config_of_another_model_needs_load_checkpoint(tmp_path):
    with pytest.raises(SettingsError, match=r"--config .*finetune_lora_cpu.yaml is not a SmolLM2-135M model.*"
                                            r"--load_checkpoint"):
        resolve({"config": str(SMOKE_CONFIG)})  # the tiny model: SmolLM2's weights would not load
    ckpt = tmp_path / "base.ckpt"
    ckpt.write_bytes(b"x")
    s = resolve({"config": str(SMOKE_CONFIG), "load_checkpoint": str(ckpt)})
    assert s.base_source == "given" and s.load_checkpoint == str(ckpt)
    assert resolve({"config": str(DEFAULT_CONFIG)}).base_source == "smollm2_gguf"


def test_llama3_yaml_needs_a_vocab_file_and_evaluates_on_mindformers(tmp_path):
    ckpt, vocab = tmp_path / "llama3.ckpt", tmp_path / "tokenizer.model"
    ckpt.write_bytes(b"x")
    with pytest.raises(SettingsError, match="vocab_file '' .*--vocab_file"):
        resolve({"config": str(LLAMA3_1P), "load_checkpoint": str(ckpt)})
    vocab.write_bytes(b"x")
    s = resolve({"config": str(LLAMA3_1P), "load_checkpoint": str(ckpt), "vocab_file": str(vocab)})
    assert s.vocab_file == str(vocab) and s.eval_backend == "mindformers"  # device_target Ascend
    # a variant that inherits everything but seq_length through base_config, resolved as MindFormers does
    seq512 = resolve({"config": str(LLAMA3_1P.parent / "finetune_lora_910b_8p_seq512.yaml"),
                      "load_checkpoint": str(ckpt), "vocab_file": str(vocab)})
    assert seq512.seq_length == 512 and seq512.eval_backend == "mindformers"


def test_eval_data_replaces_the_held_out_split(tmp_path):
    items = tmp_path / "test.jsonl"
    items.write_text('{"problem": "1+1", "solution": "2"}\n')
    s = resolve({"eval_data": str(items)})
    assert s.eval_data == str(items) and s.eval_size == 0
    with pytest.raises(SettingsError, match="--eval_data .*--eval_size"):
        resolve({"eval_data": str(items), "eval_size": 5})


def test_missing_files_and_unknown_names_are_named():
    with pytest.raises(SettingsError, match="--data /nonexistent.jsonl: no such file"):
        resolve({"data": ["/nonexistent.jsonl"]})
    with pytest.raises(SettingsError, match="--template 'nope' unknown; known: .*vicuna_v1.1"):
        resolve({"template": "nope"})
    with pytest.raises(SettingsError, match="--corpus_size .*--data"):
        resolve({"data": [str(DEFAULT_CONFIG)], "num_samples": 5})


def test_cli_reports_conflicts_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_main(["finetune", "--backend", "torch", "--save_steps", "5", "--run_dir", str(tmp_path / "r")])
    assert exc.value.code == 2
    assert "--save_steps is not supported with --backend torch" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_resume_takes_the_run_and_nothing_else(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_main(["finetune", "--resume", "--run_dir", str(tmp_path / "r"), "--stop_step", "5", "--seed", "1"])
    assert "--resume continues a run with the settings in its run.json; drop --seed, --stop_step" \
        in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_main(["finetune", "--resume", "--run_dir", str(tmp_path / "r")])
    assert "run.json not found (no run to resume there)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_main(["finetune", "--resume"])
    assert "--resume needs the run to continue" in capsys.readouterr().err


def test_num_samples_has_one_meaning(tmp_path, capsys):
    # Corpus size is --corpus_size; --num_samples is only eval.logic's vote count (--logic_votes here).
    for argv in (["finetune", "--num_samples", "5"], ["eval", "--run_dir", str(tmp_path), "--num_samples", "3"]):
        with pytest.raises(SystemExit) as exc:
            run_main(argv)
        assert exc.value.code == 2 and "unrecognized arguments: --num_samples" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_main(["finetune", "--resume", "--run_dir", str(tmp_path / "r"), "--corpus_size", "5"])
    assert "--corpus_size" in capsys.readouterr().err


def test_quantization_means_the_torch_backend_and_conflicts_with_mindformers(tmp_path, capsys):
    assert resolve({}).quantization == "none"
    s = resolve({"quantization": "nf4"})
    assert (s.backend, s.quantization) == ("torch", "nf4")
    assert resolve({"quantization": "none", "backend": "mindformers"}).backend == "mindformers"
    with pytest.raises(SettingsError, match="--quantization int8 .*--backend mindformers"):
        resolve({"quantization": "int8", "backend": "mindformers"})
    # run.json files written before the option read back unquantized.
    old = {k: v for k, v in s.to_dict().items() if k != "quantization"}
    assert RunSettings.from_dict(old).quantization == "none"
    with pytest.raises(SystemExit):
        run_main(["finetune", "--backend", "mindformers", "--quantization", "nf4", "--run_dir", str(tmp_path / "r")])
    assert "--quantization nf4 (bitsandbytes QLoRA) runs on the torch backend; --backend mindformers" \
        in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
