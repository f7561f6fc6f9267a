"""``mathlora <command> [options]``: every CLI of the suite behind one command (``mathlora --help`` lists
them). Each command runs the module's own ``main`` (``mathlora train ...`` is ``python -m
research.llama3.train.finetune ...``, ``mathlora eval math ...`` is ``python -m eval.math ...``); both forms take the same options. A user error (missing file,
bad option) is one ``error: ...`` line and exit status 2.

To add a CLI: give the module a ``main(argv) -> int`` that builds a :class:`preprocess.cli.Parser` with
``prog="python -m <module>"``, then add one line to :data:`COMMANDS` (or to one of its groups).
"""
from __future__ import annotations

import difflib
import importlib
import sys

from preprocess.cli import EXIT_USAGE, prog, run_main

# name -> (module whose main() runs, one line for --help), or a group: (one line, {name: (module, line)}).
# Modules are imported only when their command runs, so `mathlora --help` stays fast.
COMMANDS: dict[str, tuple] = {
    "synthesize": ("preprocess.synthesize", "generate a seeded contest-style math corpus (JSONL)"),
    "augment-logic": ("preprocess.augment_logic", "generate logic puzzles checked by two solvers"),
    "preprocess": ("preprocess", "validate, dedup, classify, write CoT/PoT targets, verify, split"),
    "bagging": ("preprocess.bagging", "draw bootstrap bags of a conversations file"),
    "check-config": ("research.llama3.config.config_check", "check a MindFormers YAML against the 1.9 schema"),
    "mindrecord": ("research.llama3.records.mindrecord", "tokenize conversations into a MindRecord file"),
    "convert": ("checkpoint conversions and merges (mathlora convert --help)", {
        "gguf": ("research.llama3.checkpoint.convert_gguf", "GGUF (embedded SmolLM2) -> MindFormers checkpoint"),
        "hf": ("research.llama3.checkpoint.convert_hf", "HF safetensors <-> MindFormers checkpoint"),
        "merge-lora": ("research.llama3.checkpoint.merge_lora", "merge a LoRA checkpoint into its base"),
        "merge-qlora": ("research.llama3.train.quantization", "dequantize a QLoRA run's base and merge its adapter"),
        "merge-ranks": ("research.llama3.checkpoint.merge_ranks", "merge per-rank checkpoints into one"),
        "peft": ("research.llama3.checkpoint.peft_adapter", "MindFormers LoRA <-> PEFT adapter directory"),
        "random-init": ("research.llama3.checkpoint.random_init", "seeded random base checkpoint for a YAML"),
    }),
    "train": ("research.llama3.train.finetune", "LoRA fine-tuning with MindFormers (CPU or Ascend)"),
    "train-torch": ("research.llama3.train.torch_finetune", "LoRA fine-tuning with PyTorch + PEFT (CPU or CUDA)"),
    "dry-run": ("research.llama3.train.dry_run", "run an Ascend YAML's training steps on CPU"),
    "export": ("research.llama3.export.export_mindir", "export a model (LoRA merged) to MindIR"),
    "eval": ("evaluations of a model (mathlora eval --help)", {
        "math": ("eval.math", "math accuracy (tool-free and PoT) of a model or a predictions file"),
        "base": ("eval.base", "base capability: SQuAD-style EM/F1 and the 90% rule"),
        "logic": ("eval.logic", "Tianchi logic accuracy and submission file"),
    }),
    "report": ("eval.run_report", "rebuild a run directory's report.md"),
    "obs": ("research.obs", "upload/download a run directory to/from Huawei Cloud OBS"),
    "run": ("research.run", "the whole job: finetune (data -> ... -> report) or eval of a run"),
}


def usage(table: dict = COMMANDS, name: str = "mathlora") -> str:
    """The help text of ``name``: one line per command of ``table``."""
    width = max(map(len, table))
    lines = [f"  {command:<{width}}  {entry[0] if isinstance(entry[1], dict) else entry[1]}"
             for command, entry in table.items()]
    return (f"usage: {name} <command> [options]   ({name} <command> --help for its options)\n\n"
            + __doc__.split("\n\n")[0] + "\n\ncommands:\n" + "\n".join(lines) + "\n")


def entry_point(module_name: str):
    """The ``main`` of a command's module (a package's CLI is its ``__main__``)."""
    module = importlib.import_module(module_name)
    return module.main if hasattr(module, "main") else importlib.import_module(module_name + ".__main__").main


def main(argv: list[str] | None = None, table: dict = COMMANDS, name: str = "mathlora") -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to the named command's ``main``; returns its exit
    status, 2 for a missing or unknown command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(table, name), end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else EXIT_USAGE
    command, rest = argv[0], argv[1:]
    if command not in table:
        close = difflib.get_close_matches(command, list(table), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"{name}: error: unknown command {command!r}{hint}; {name} --help lists them", file=sys.stderr)
        return EXIT_USAGE
    target, second = table[command]
    if isinstance(second, dict):
        return main(rest, second, f"{name} {command}")
    with prog(f"{name} {command}"):
        return run_main(entry_point(target), rest)

if __name__ == "__main__":
    sys.exit(main())
