"""The file names of a run directory (``logs/<run-id>/``): the only place they are spelled out.

Every stage, scripts/eval.sh and the report take these paths from a :class:`RunLayout`, so a
renamed file changes here and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "logs"
DEFAULT_CONFIG = ROOT / "configs" / "smollm2_135m" / "finetune_lora_cpu.yaml"
# seq_length 512 for Tianchi logic prompts (256 fits 22% of them, 512 80%).
LOGIC_CONFIG = ROOT / "configs" / "smollm2_135m" / "finetune_lora_cpu_seq512.yaml"
SMOKE_LOGIC_CONFIG = ROOT / "configs" / "tiny" / "finetune_lora_cpu_seq512.yaml"
SMOKE_CONFIG = ROOT / "configs" / "tiny" / "finetune_lora_cpu.yaml"
SMOKE_CONFIG_DP2 = ROOT / "configs" / "tiny" / "finetune_lora_cpu_dp2.yaml"
# Base models converted once to MindFormers names and reused by later runs: the embedded SmolLM2 GGUF,
# and --base_gguf/--base_hf files (research.run.base_file.converted_checkpoint).
BASE_CACHE = ROOT / ".cache" / "base"
DEFAULT_BASE_CKPT = BASE_CACHE / "smollm2_135m.ckpt"
# python -m preprocess --config for the generated corpus (no --data): its training quotas.
GENERATED_CORPUS_PREPROCESS = ROOT / "configs" / "preprocess" / "generated_corpus.yaml"


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run directory.

    Attributes:
        root: the run directory, ``logs/<run-id>`` unless given elsewhere.
    """

    root: Path

    @classmethod
    def for_run_id(cls, run_id: str, logs: Path = LOGS) -> "RunLayout":
        return cls(Path(logs) / run_id)

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def resume_hint(self) -> str:
        """The command that continues this run's interrupted training (``--run_id`` for a run under
        logs/, else ``--run_dir``)."""
        where = f"--run_id {self.run_id}" if self.root.resolve().parent == LOGS.resolve() else f"--run_dir {self.root}"
        return f"resume with `bash scripts/finetune.sh --resume {where}`"

    @property
    def manifest(self) -> Path:
        return self.root / "run.json"

    @property
    def data_dir(self) -> Path:
        """preprocess outputs: items.jsonl, eval.jsonl, conversations.json, rejected.jsonl, report.json/md."""
        return self.root / "data"

    @property
    def generated(self) -> Path:
        return self.data_dir / "generated.jsonl"

    @property
    def conversations(self) -> Path:
        return self.data_dir / "conversations.json"

    @property
    def eval_items(self) -> Path:
        """The held-out items (never trained on)."""
        return self.data_dir / "eval.jsonl"

    @property
    def data_report(self) -> Path:
        return self.data_dir / "report.json"

    @property
    def mindrecord(self) -> Path:
        return self.root / "train.mindrecord"

    @property
    def mindrecord_report(self) -> Path:
        return self.root / "train.mindrecord.report.json"

    @property
    def random_base(self) -> Path:
        """Seeded random base weights (--smoke without --load_checkpoint)."""
        return self.root / "base.ckpt"

    @property
    def base_config(self) -> Path:
        """The YAML derived from --base_gguf/--base_hf when no --config is given (research.run.base_file)."""
        return self.root / "base_model.yaml"

    @property
    def output_dir(self) -> Path:
        """MindFormers' output_dir: checkpoint/, checkpoint_trainable/, checkpoint_epoch/ per rank."""
        return self.root / "output"

    @property
    def config(self) -> Path:
        """The effective training config the training entry writes."""
        return self.root / "config.yaml"

    @property
    def loss_log(self) -> Path:
        return self.root / "loss.jsonl"

    @property
    def params(self) -> Path:
        return self.root / "params.json"

    @property
    def lora(self) -> Path:
        return self.root / "lora.ckpt"

    @property
    def msrun_dir(self) -> Path:
        return self.root / "msrun"

    @property
    def mindformers_logs(self) -> Path:
        """``LOCAL_DEFAULT_PATH`` for MindFormers' own logs (instead of ./output/log)."""
        return self.root / "mindformers"

    @property
    def bags_dir(self) -> Path:
        """``--bags``: ``bags.json`` and one run directory per adapter, ``bag_NN/``."""
        return self.root / "bags"

    def bag(self, k: int) -> "RunLayout":
        """The run directory of bag ``k`` (``bags/bag_NN``, as ``preprocess.bagging`` names it)."""
        return RunLayout(self.bags_dir / f"bag_{k:02d}")

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    def log(self, stage: str) -> Path:
        """Full output of one stage's process, e.g. ``train.log``."""
        return self.root / f"{stage}.log"

    def eval_dir(self, name: str, model: str) -> Path:
        """Outputs of one evaluation: ``eval/<name>_<model>/`` with ``model`` ``base`` or ``lora``
        (``metrics.json``, ``predictions.jsonl``, ``report.md``)."""
        return self.root / "eval" / f"{name}_{model}"

    def relative(self, path: Path | str) -> str:
        """``path`` relative to the run directory when inside it (how the manifest records outputs)."""
        path = Path(path)
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def resolve(self, recorded: str) -> Path:
        """Inverse of :meth:`relative`."""
        path = Path(recorded)
        return path if path.is_absolute() else self.root / path
