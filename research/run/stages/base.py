"""The base stage: the run's base checkpoint in MindFormers names (given, seeded random, the embedded
SmolLM2 or a ``--base_gguf``/``--base_hf`` file, the last two converted once into ``.cache/base/``)."""
from __future__ import annotations

from pathlib import Path

from research.rundir.layout import DEFAULT_BASE_CKPT, RunLayout
from research.rundir.manifest import file_sha256, file_stamp, run_stage
from research.run.base_file import convert_command, converted_checkpoint
from research.run.settings import RunSettings
from research.run.stages.common import PY, Run, run_command


def base_checkpoint(settings: RunSettings, layout: RunLayout) -> Path:
    """Where the run's base weights are: given, seeded random in the run, the converted SmolLM2, or the
    converted ``--base_gguf``/``--base_hf`` file (cached under its key)."""
    if settings.base_source == "given":
        return Path(settings.load_checkpoint)
    if settings.base_source in ("gguf", "hf"):
        return converted_checkpoint(settings.base_source, settings.base_file_key)
    return layout.random_base if settings.base_source == "random_init" else DEFAULT_BASE_CKPT


def _convert_once(lay: RunLayout, ckpt: Path, cmd: list):
    """The stage's work: run the converter unless ``ckpt`` (shared by every run of this checkout) exists;
    the converters write it atomically, so a killed conversion leaves no partial file."""
    def work():
        if not ckpt.is_file():
            run_command(lay, "base", cmd, lay.log("base"))
    return work


def stage_base(run: Run) -> Path:
    """The base checkpoint in MindFormers names: ``--load_checkpoint``, seeded random weights for
    ``--smoke`` (``research.llama3.checkpoint.random_init``), the embedded SmolLM2 GGUF converted once, or
    ``--base_gguf``/``--base_hf`` converted once (``convert_gguf``/``convert_hf``, float32). The manifest
    records the given checkpoint's stamp, the random seed and YAML, or the base file and its key."""
    s, lay = run.settings, run.layout
    ckpt = base_checkpoint(s, lay)
    if s.base_source == "given":
        inputs, work = {"checkpoint": file_stamp(ckpt)}, lambda: None
    elif s.base_source == "random_init":
        inputs = {"random_init": file_sha256(s.config), "seed": s.seed}
        work = lambda: run_command(lay, "base", [PY, "-m", "research.llama3.checkpoint.random_init", "--config", s.config,  # noqa: E731
                                                 "--output", ckpt, "--seed", s.seed], lay.log("base"))
    elif s.base_source in ("gguf", "hf"):
        inputs = {s.base_source: {"path": s.base_file, "key": s.base_file_key}, "checkpoint": str(ckpt)}
        work = _convert_once(lay, ckpt, convert_command(PY, s.base_source, s.base_file, ckpt))
    else:
        inputs = {"smollm2_gguf": str(ckpt)}
        work = _convert_once(lay, ckpt, [PY, "-m", "research.llama3.checkpoint.convert_gguf", "--output", ckpt])
    run_stage(run.manifest, "base", inputs, [ckpt], work, log=run.log)
    run.log(f"  base: {ckpt}")
    return ckpt
