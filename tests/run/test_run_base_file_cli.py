"""--base_gguf through the runner's command line up to its config check (which starts the config_check
process): a --config that does not fit is exit 2 naming the keys, and a rejected new run leaves no derived YAML."""
import pytest

from research.run.__main__ import main as run_main
from research.rundir.layout import SMOKE_CONFIG
from tests.fixtures.tiny_qwen2 import tokenizerless_qwen2_gguf

pytestmark = pytest.mark.integration


def test_a_config_that_does_not_fit_is_exit_2_naming_the_keys(tmp_path, capsys):
    gguf = tokenizerless_qwen2_gguf(tmp_path / "tiny.gguf")
    with pytest.raises(SystemExit) as exc:
        run_main(["finetune", "--config", str(SMOKE_CONFIG), "--base_gguf", str(gguf),
                  "--run_dir", str(tmp_path / "r")])
    assert exc.value.code == 2 and "qkv_has_bias: YAML False, file True" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_rejected_run_leaves_no_derived_yaml(tiny_qwen2_gguf, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_main(["finetune", "--base_gguf", str(tiny_qwen2_gguf), "--template", "nope",
                  "--run_dir", str(tmp_path / "r")])
    assert exc.value.code == 2 and "--template 'nope' unknown" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
