"""The base model from a file (research.run.base_file, --base_gguf/--base_hf): conflicts named before any
work, a --config that does not fit the file named key by key, the family's template, and run.json
settings from before these options still read."""
import dataclasses

import pytest

from research.run.__main__ import main as run_main
from research.run.base_file import config_mismatches, converted_checkpoint, file_dims, file_key
from research.rundir.layout import BASE_CACHE, ROOT, SMOKE_CONFIG, RunLayout
from research.rundir.manifest import file_sha256
from research.run.settings import RunSettings, SettingsError, resolve
from research.run.stages.base import base_checkpoint
from tests.fixtures.tiny_qwen2 import tiny_qwen2, tokenizerless_qwen2_gguf

pytestmark = pytest.mark.unit

TINY_QWEN2 = ROOT / "configs" / "tiny" / "finetune_lora_cpu_qwen2.yaml"


@pytest.fixture(scope="module")
def qwen2_gguf(tmp_path_factory):
    """A Qwen2 GGUF with the dims of configs/tiny/finetune_lora_cpu_qwen2.yaml (no tokenizer of its own)."""
    return tokenizerless_qwen2_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def qwen2_hf(tmp_path_factory):
    """The same model as a HF safetensors directory."""
    out = tmp_path_factory.mktemp("hf")
    tiny_qwen2(vocab_size=49152, intermediate_size=128, tied=True).save_pretrained(out, safe_serialization=True)
    return out


@pytest.mark.parametrize("pair", [("base_gguf", "base_hf"), ("base_gguf", "load_checkpoint"),
                                  ("base_hf", "load_checkpoint"), ("base_gguf", "smoke"), ("base_hf", "smoke")])
def test_base_file_options_exclude_each_other_and_the_other_bases(pair, tmp_path, capsys):
    options = {name: True if name == "smoke" else str(tmp_path / name) for name in pair}
    with pytest.raises(SettingsError, match=f"--{pair[0]} and --{pair[1]} both choose the base model"):
        resolve(options)  # before any file is looked at: none of these exists
    argv = [a for name in pair for a in ([f"--{name}"] if name == "smoke" else [f"--{name}", options[name]])]
    with pytest.raises(SystemExit) as exc:
        run_main(["finetune", *argv, "--run_dir", str(tmp_path / "r")])
    assert exc.value.code == 2 and f"--{pair[0]} and --{pair[1]}" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # no work started


def test_a_config_that_does_not_fit_the_file_names_every_key(qwen2_gguf, qwen2_hf):
    for option, path in (("base_gguf", qwen2_gguf), ("base_hf", qwen2_hf)):
        with pytest.raises(SettingsError, match=f"--config .*finetune_lora_cpu.yaml does not fit --{option}") as exc:
            resolve({"config": str(SMOKE_CONFIG), option: str(path)})  # the tiny Llama
        message = str(exc.value)
        for key in ("qkv_has_bias: YAML False, file True", "tie_word_embeddings: YAML False, file True",
                    "theta: YAML 10000.0, file 1000000.0", "rms_norm_eps"):
            assert key in message, message
        assert "hidden_size" not in message and "vocab_size" not in message  # those agree


def test_a_fitting_config_trains_on_the_file_with_the_family_template(qwen2_gguf, qwen2_hf, tmp_path):
    s = resolve({"config": str(TINY_QWEN2), "base_gguf": str(qwen2_gguf)})
    assert (s.base_source, s.base_file, s.base_file_key) == ("gguf", str(qwen2_gguf), file_sha256(qwen2_gguf))
    assert s.template == "chatml" and s.load_checkpoint is None  # Qwen2's default template
    assert resolve({"config": str(TINY_QWEN2), "base_gguf": str(qwen2_gguf), "template": "vicuna_nosys"}).template == \
        "vicuna_nosys"
    assert base_checkpoint(s, RunLayout(tmp_path)) == BASE_CACHE / f"gguf-{s.base_file_key[:16]}.ckpt"
    hf = resolve({"config": str(TINY_QWEN2), "base_hf": str(qwen2_hf)})
    assert (hf.base_source, hf.base_file, hf.template) == ("hf", str(qwen2_hf), "chatml")
    assert base_checkpoint(hf, RunLayout(tmp_path)) == converted_checkpoint("hf", file_key("hf", qwen2_hf))
    assert RunSettings.from_dict(s.to_dict()) == s


def test_file_dims_and_mismatches(qwen2_gguf, qwen2_hf):
    gguf_dims, hf_dims = file_dims("gguf", qwen2_gguf), file_dims("hf", qwen2_hf)
    assert gguf_dims.family == hf_dims.family == "qwen2" and gguf_dims.tie_word_embeddings
    # the ids may differ between the files (GGUF metadata vs config.json); the architecture does not
    assert dataclasses.replace(gguf_dims, bos_token_id=None, eos_token_id=None, pad_token_id=None) == \
        dataclasses.replace(hf_dims, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    fitting = {"vocab_size": 49152, "hidden_size": 64, "num_layers": 2, "num_heads": 4, "n_kv_heads": 2,
               "intermediate_size": 128, "qkv_has_bias": True, "tie_word_embeddings": True, "theta": 1e6,
               "rms_norm_eps": 1e-6}
    assert config_mismatches(fitting, gguf_dims) == []
    assert config_mismatches({**fitting, "num_layers": 3, "n_kv_heads": None}, gguf_dims) == \
        ["num_layers: YAML 3, file 2", "n_kv_heads: YAML 4, file 2"]  # absent n_kv_heads: num_heads


def test_missing_base_file_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="--base_gguf .*nothing.gguf: no such file"):
        resolve({"config": str(TINY_QWEN2), "base_gguf": str(tmp_path / "nothing.gguf")})


def test_run_json_from_before_base_files_still_reads():
    old = resolve({}).to_dict()
    for name in ("base_file", "base_file_key"):
        old.pop(name)
    s = RunSettings.from_dict(old)
    assert s.base_source == "smollm2_gguf" and s.base_file is None and s.base_file_key is None


def test_a_file_without_a_usable_tokenizer_is_named_before_any_work(qwen2_gguf, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # no --config: the YAML would take the GGUF's tokenizer; it has none
        run_main(["finetune", "--base_gguf", str(qwen2_gguf), "--run_dir", str(tmp_path / "r")])
    assert exc.value.code == 2 and f"--base_gguf {qwen2_gguf}: " in capsys.readouterr().err
    assert not (tmp_path / "r").exists()

