"""Evaluation: the steps a run's graders need (:func:`eval_plan`, one :class:`EvalStep` per model and
grader), running one (:func:`stage_eval`, the base model's result cached across runs in
``.cache/eval/``) and the run's report (:func:`stage_report`)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from preprocess.readers import read_records
from research.run import eval_cache
from research.rundir.layout import ROOT, RunLayout
from research.rundir.manifest import file_sha256, run_stage
from research.run.settings import RunSettings
from research.run.stages.common import PY, Run, StageFailed, run_command

@dataclass(frozen=True)
class EvalStep:
    """One evaluation CLI run on one model.

    Attributes:
        name: the evaluation's name (``math``, ``base_<file>``, ``logic``); outputs go to
            ``eval/<name>_<model>/``.
        module: the CLI (``eval.math``, ``eval.base``, ``eval.logic``).
        items_option / items: the CLI's input option and file.
        model: ``base`` or ``lora``.
        args: further CLI arguments.
        baseline: pass the base model's ``metrics.json`` as ``--baseline`` (lora only).
        template: the CLI takes ``--template``.
        adapters: LoRA checkpoints voting together (``--bags``) instead of the run's ``lora.ckpt``.
    """

    name: str
    module: str
    items_option: str
    items: str
    model: str
    args: tuple = ()
    baseline: bool = False
    template: bool = True
    adapters: tuple = ()


def before_after(name: str, module: str, items_option: str, items: str, args: tuple = (),
                 baseline: bool = True, template: bool = True) -> list[EvalStep]:
    """The base model, then with the run's LoRA (compared with the base when ``baseline``)."""
    return [EvalStep(name, module, items_option, str(items), "base", args, False, template),
            EvalStep(name, module, items_option, str(items), "lora", args, baseline, template)]


POT_FEWSHOT = ROOT / "configs" / "eval" / "pot_fewshot.jsonl"
FEWSHOT_MAX_NEW_TOKENS = 96


def math_steps(settings: RunSettings, items: str | Path, max_new_tokens: int, batch_size: int) -> list[EvalStep]:
    """``eval.math`` before/after fine-tuning on ``items``, in the mode the run trained for.

    ``target_style pot`` and ``pot_cot``: both evals run ``eval.math --mode pot`` (tool-free and
    tool-assisted columns). The base model has never seen the ``算式：`` form, so asked plainly it writes
    no expression and its tool-assisted column measures nothing; its "before" is therefore prompted with
    the PoT worked examples (``--fewshot configs/eval/pot_fewshot.jsonl --template none``, how issue 12
    measured the untrained model at 65/100), the "after" with the run's template and no examples, as it
    was trained. pot_cot runs use the same examples: worked examples with the steps as well made the
    prompt 2,143 tokens, after which one prompt decodes at 78 ms a token on 2 CPU cores, and the steps
    are long (a run with them had not finished its first batch of 25 items in 15 minutes); and the base
    writes no correct tool-free answer either way (0/60 real additions and subtractions asked plainly,
    docs/recipe_runs.md).
    """
    args = ("--max_new_tokens", max_new_tokens, "--batch_size", batch_size)
    if settings.target_style == "cot":
        return before_after("math", "eval.math", "--items", items, args)
    # The worked examples' answers are one line (PoT targets are at most 69 SmolLM2 tokens): a base that goes on
    # past that only holds its whole batch up (one such row took a 100-item eval from 3 to 8 minutes).
    shown = ("--max_new_tokens", min(max_new_tokens, FEWSHOT_MAX_NEW_TOKENS), "--batch_size", batch_size)
    return [EvalStep("math", "eval.math", "--items", str(items), "base",
                     (*shown, "--mode", "pot", "--fewshot", POT_FEWSHOT, "--template", "none"), False,
                     template=False),
            EvalStep("math", "eval.math", "--items", str(items), "lora", (*args, "--mode", "pot"), True)]


def math_plan(settings: RunSettings, layout: RunLayout) -> list[EvalStep]:
    """Math accuracy before/after fine-tuning on ``--eval_data`` or the held-out split (``eval.math``
    skips logic items)."""
    return math_steps(settings, settings.eval_data or layout.eval_items, settings.max_new_tokens, 25)


def logic_plan(settings: RunSettings, layout: RunLayout) -> list[EvalStep]:
    """Logic accuracy before/after (``eval.logic``: sub-questions and whole problems beside chance, with
    votes) on the same items, asked in the training records' ``logic_style``; with ``--bags`` the
    "after" model is the vote of every bag's adapter."""
    items = settings.eval_data or layout.eval_items
    args = ("--style", settings.logic_style, "--max_new_tokens", settings.logic_max_new_tokens, "--batch_size", 25,
            *(("--num_samples", settings.logic_votes) if settings.logic_votes else ()))
    base, lora = before_after("logic", "eval.logic", "--items", items, args, baseline=False)
    adapters = tuple(str(layout.bag(k).lora) for k in range(settings.bags))
    return [base, replace(lora, adapters=adapters)]


EVAL_PLANS = {"math": math_plan, "logic": logic_plan}


def eval_graders(settings: RunSettings, layout: RunLayout) -> list[str]:
    """Which graders (keys of :data:`EVAL_PLANS`) a run's evaluation items need.

    ``--task math``/``logic``: that one. ``auto``: ``logic`` when the items have logic records, ``math``
    when they have others (a mixed file gets both, each grading its own items); items are the held-out
    split (counted per category in ``data/report.json``) or ``--eval_data`` (read as preprocess reads it).

    Raises:
        StageFailed: ``--task logic`` or ``--bags`` with no logic item to evaluate.
    """
    if settings.task == "math":
        return ["math"]
    if settings.eval_data:
        records = read_records(settings.eval_data)[0]
        has_logic, has_math = any("logic" in r for r in records), any("logic" not in r for r in records)
    else:
        per = json.loads(layout.data_report.read_text(encoding="utf-8")).get("per_category", {})
        held_out = {cat: c.get("eval", 0) for cat, c in per.items()}
        has_logic = held_out.get("logic", 0) > 0
        has_math = any(n > 0 for cat, n in held_out.items() if cat != "logic")
    if (settings.task == "logic" or settings.bags) and not has_logic:
        where = settings.eval_data or layout.data_report
        raise StageFailed(f"no logic items to evaluate in {where} (--task logic / --bags need them)")
    if settings.task == "logic":
        return ["logic"]
    return (["math"] if has_math or not has_logic else []) + (["logic"] if has_logic else [])


def eval_plan(settings: RunSettings, layout: RunLayout) -> list[EvalStep]:
    """The evaluation steps of a finetune run (after preprocess): one plan per grader it needs."""
    return [step for grader in eval_graders(settings, layout) for step in EVAL_PLANS[grader](settings, layout)]


def eval_command(s: RunSettings, lay: RunLayout, step: EvalStep, base: Path, backend: str | None = None,
                 template: str | None = None, limit: int | None = None) -> list[str]:
    """The evaluation CLI's command line: the run's config, base checkpoint, tokenizer file, template and
    eval backend unless ``backend``/``template`` are given; the LoRA and baseline for ``lora`` steps."""
    cmd = [PY, "-m", step.module, step.items_option, step.items, "--config", s.config, "--load_checkpoint", base,
           "--backend", backend or s.eval_backend, *step.args, "--output_dir", lay.eval_dir(step.name, step.model)]
    if step.template:
        cmd += ["--template", template or s.template]
    if s.vocab_file:
        cmd += ["--model_file", s.vocab_file]
    if limit:
        cmd += ["--limit", limit]
    if step.model == "lora":
        cmd += ["--lora_checkpoint", *(step.adapters or [lay.lora])]
        if step.baseline:
            cmd += ["--baseline", lay.eval_dir(step.name, "base") / "metrics.json"]
    return [str(c) for c in cmd]


def stage_eval(run: Run, step: EvalStep, base: Path, backend: str | None = None, template: str | None = None,
               limit: int | None = None) -> Path:
    """Run one evaluation step on the run's base checkpoint (and LoRA); return its output directory.

    The config, template, tokenizer file and backend come from the run's settings unless given.
    """
    lay = run.layout
    out = lay.eval_dir(step.name, step.model)
    cmd = eval_command(run.settings, lay, step, base, backend, template, limit)
    inputs = {"items": file_sha256(step.items), "base": run.manifest.stage_key("base"), "cmd": cmd[3:]}
    stage = f"eval_{step.name}_{step.model}"

    def evaluate():
        run_command(lay, stage, cmd, lay.log(stage), tee_stderr=True)

    work = evaluate
    if step.model == "lora":
        inputs["train"] = (run.manifest.stage_key("train") or file_sha256(lay.lora)) if not step.adapters else \
            [file_sha256(a) for a in step.adapters]
        if step.baseline:
            inputs["baseline"] = run.manifest.stage_key(f"eval_{step.name}_base")
    elif run.settings.base_source != "random_init":  # --smoke's base lives and dies with its run
        # the base model's result depends on nothing the run trained: shared across runs
        key = eval_cache.cache_key(cmd, step.items, base, run.settings.config, run.manifest.data.get("code_version", ""))
        inputs["cache_key"] = key
        work = partial(eval_cache.reuse_or_run, key, out, evaluate, log=run.log)

    run_stage(run.manifest, stage, inputs, [out / "metrics.json"], work, log=run.log)
    return out


def stage_report(run: Run) -> None:
    """``report.md``, ``loss.png``, ``loss.csv`` (``python -m eval.run_report``); always rebuilt."""
    lay = run.layout
    run_stage(run.manifest, "report", {}, [lay.report],
              lambda: run_command(lay, "report", [PY, "-m", "eval.run_report", "--run_dir", lay.root,
                                                  "--wall_s", round(time.time() - run.t0)]), force=True, log=run.log)

