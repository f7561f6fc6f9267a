"""MindIR export of a LoRA-merged tiny Llama: load back with mindspore.load + nn.GraphCell, logits equal to
the unmerged model (base + LoRA cells); the optional MindSpore Lite backend."""
import os
import re
from pathlib import Path

import numpy as np
import pytest

from preprocess.cli import run_main
from research.llama3.export.export_mindir import check_parity, export_mindir, lite_available, main, run_mindir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CONFIG = str(ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml")


@pytest.fixture(scope="module")
def export_ckpts(tmp_path_factory):
    """``(base.ckpt, lora.ckpt)``: the tiny YAML's random base and a LoRA with random (non-zero) A and B."""
    import mindspore as ms
    from mindformers import MindFormerConfig
    from mindformers.pet import LoraConfig
    from mindformers.pet.pet_model import get_pet_model

    from research.llama3.checkpoint.random_init import build_model, init_random_checkpoint

    work = tmp_path_factory.mktemp("export")
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    base = str(work / "base.ckpt")
    init_random_checkpoint(CONFIG, base, seed=0)
    pet = MindFormerConfig(CONFIG).model.model_config.pet_config
    model = get_pet_model(build_model(MindFormerConfig(CONFIG).model.model_config),
                          LoraConfig(lora_rank=pet.lora_rank, lora_alpha=pet.lora_alpha, lora_dropout=0.0,
                                     target_modules=pet.target_modules))
    rng = np.random.default_rng(1)
    # Trained B is non-zero; MindPet's zero init would make the merge a no-op and the test blind.
    lora = [{"name": p.name, "data": ms.Tensor((rng.standard_normal(p.shape) * 0.05).astype(np.float32))}
            for p in model.get_parameters() if "mindpet_delta_lora" in p.name]
    assert len(lora) == 8  # 2 layers x (wq, wv) x (A, B)
    ms.save_checkpoint(lora, str(work / "lora.ckpt"))
    yield base, str(work / "lora.ckpt"), work
    ms.set_context(mode=previous)


def test_merged_mindir_matches_unmerged_model(export_ckpts):
    base, lora, work = export_ckpts
    mindir = export_mindir(CONFIG, base, str(work / "merged.mindir"), lora, seq_length=32)
    assert os.path.getsize(mindir) > 6_000_000 * 4  # the 6.4M float32 weights are inside the graph
    parity = check_parity(CONFIG, base, lora, mindir, seq_length=32)
    print(f"MindIR vs unmerged: {parity}")
    assert parity["rel_err"] < 1e-5 and parity["argmax_agree"] == 1.0
    # The adapter changes the logits: the same MindIR is far from the base model alone.
    assert check_parity(CONFIG, base, None, mindir, seq_length=32)["rel_err"] > 0.05


def test_cli_exports_batch_two_and_reports_parity(export_ckpts, capsys):
    base, lora, work = export_ckpts
    out = work / "b2.mindir"
    rc = main(["--config", CONFIG, "--load_checkpoint", base, "--lora_checkpoint", lora, "--output", str(out),
               "--seq_length", "16", "--batch_size", "2", "--check_parity"])
    text = capsys.readouterr().out
    assert rc == 0, text
    m = re.search(r"rel err ([0-9.e+-]+), max abs [0-9.e+-]+, argmax agreement ([0-9.]+)", text)
    assert m and float(m.group(1)) < 1e-5 and float(m.group(2)) == 1.0, text
    ids = np.random.default_rng(3).integers(1, 49152, (2, 16)).astype(np.int32)
    assert run_mindir(str(out), ids).shape == (2, 16, 49152)
    assert run_main(main, ["--config", CONFIG, "--load_checkpoint", base, "--output", str(work / "x.onnx")]) == 2
    assert "must end in .mindir" in capsys.readouterr().err


def test_lite_backend_when_available(export_ckpts):
    base, lora, work = export_ckpts
    mindir = work / "merged.mindir"
    if not mindir.exists():
        export_mindir(CONFIG, base, str(mindir), lora, seq_length=32)
    ids = np.random.default_rng(4).integers(1, 49152, (1, 32)).astype(np.int32)
    if not lite_available():
        # No mindspore-lite wheel for this Python: the backend must refuse clearly, not fall back silently.
        with pytest.raises(RuntimeError, match="needs the mindspore_lite package"):
            run_mindir(str(mindir), ids, backend="lite")
        pytest.skip("mindspore_lite not installed: the refusal was checked, Lite parity was not run")
    np.testing.assert_allclose(run_mindir(str(mindir), ids, backend="lite"), run_mindir(str(mindir), ids),
                               rtol=1e-4, atol=1e-5)
