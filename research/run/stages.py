"""One function per stage of a run. Each runs the project's existing CLI as a subprocess (so every
MindSpore/MindFormers context lives in its own process, as under scripts/finetune.sh before) and is
recorded in ``run.json`` by :func:`research.rundir.manifest.run_stage`, which skips a stage whose outputs
are complete and whose inputs did not change.

Before them, :func:`config_problems` checks the YAML. Stages of ``finetune``: data -> preprocess -> mindrecord
-> base -> train -> [bags -> bag_NN ... (``--bags``)] -> eval (per grader, see :func:`eval_plan`) -> report. ``eval`` (scripts/eval.sh) runs evaluation steps on a finished run.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from preprocess.budget import render_table
from preprocess.readers import read_records
from research.run import eval_cache
from research.rundir.layout import DEFAULT_BASE_CKPT, GENERATED_CORPUS_PREPROCESS, ROOT, RunLayout
from research.rundir.manifest import Manifest, data_entry, file_sha256, file_stamp, run_stage
from research.run.progress import follow_training
from research.run.settings import RunSettings

PY = sys.executable
LOG_TAIL_LINES = 30


class StageFailed(RuntimeError):
    """A stage's process exited with an error; the message names the stage, exit status and log."""


@dataclass
class Run:
    """A run in progress: its directory, manifest and settings, plus per-invocation options.

    Attributes:
        resume: continue an unfinished training stage from its newest checkpoint.
        log: where stage headers and notes go (print by default).
    """

    layout: RunLayout
    manifest: Manifest
    settings: RunSettings
    resume: bool = False
    log: Callable[[str], None] = print
    t0: float = field(default_factory=time.time)
    total: int = 0
    _step: int = 0

    def header(self, title: str) -> None:
        self._step += 1
        self.log(f"\n== [{time.time() - self.t0:.0f}s] {self._step}/{self.total} {title}")


def subprocess_env(layout: RunLayout | None) -> dict:
    """Environment of every stage process: the suite importable, MindFormers' logs in the run
    directory (instead of ./output/log; left as it is without a run), MindSpore errors only on the
    console, never the HF hub."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if layout is not None:
        env["LOCAL_DEFAULT_PATH"] = str(layout.mindformers_logs)
    env.setdefault("GLOG_v", "3")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return ""


def exit_text(rc: int) -> str:
    """A process's exit status for an error message; SIGKILL (-9) is named, as on a shared host it is
    most often the kernel's OOM killer, which leaves nothing in the process's own log."""
    if rc == -9:
        return "exit -9: killed by SIGKILL, usually the out-of-memory killer (see dmesg); free memory and rerun"
    return f"exit {rc}"


def run_command(layout: RunLayout, stage: str, cmd: list, log: Path | None = None, tee_stderr: bool = False) -> None:
    """Run ``cmd`` from the repository root. With ``log``: stderr (and stdout unless ``tee_stderr``)
    goes to that file; ``tee_stderr`` also copies stderr to the console (progress bars).

    Raises:
        StageFailed: non-zero exit, with the log's last lines.
    """
    cmd = [str(c) for c in cmd]
    env = subprocess_env(layout)
    if log is None:
        rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            if tee_stderr:
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)
                for chunk in iter(lambda: os.read(proc.stderr.fileno(), 4096), b""):
                    out.write(chunk)
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
                rc = proc.wait()
            else:
                rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        where = f"; see {log}:\n{_tail(log)}" if log else ""
        raise StageFailed(f"stage {stage} failed ({exit_text(rc)}){where}")


# --- finetune stages -------------------------------------------------------------------------------

def config_problems(config: str) -> str | None:
    """Check a MindFormers YAML (``python -m research.llama3.config.config_check``: file, line, key path and a
    suggestion for each misspelt key) before any data work; its own process, as MindFormers' import is
    heavy. Returns the problems (stderr text), or None when the YAML passes."""
    proc = subprocess.run([PY, "-m", "research.llama3.config.config_check", config], cwd=ROOT, env=subprocess_env(None),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return None if proc.returncode == 0 else "\n".join(
        line for line in proc.stderr.splitlines() if line.startswith("error: ")) or proc.stderr[-2000:]


def stage_data(run: Run) -> list[dict]:
    """The input files: ``--data`` as given, or a seeded generated corpus (``data/generated.jsonl``).
    Returns their manifest entries (path, sha256, bytes)."""
    s, lay = run.settings, run.layout
    if s.data:
        entries = [data_entry(p) for p in s.data]
        run_stage(run.manifest, "data", {"files": entries}, [Path(p) for p in s.data], lambda: None, log=run.log)
    else:
        run_stage(run.manifest, "data", {"num_samples": s.num_samples, "seed": s.seed}, [lay.generated],
                  lambda: run_command(lay, "data", [PY, "-m", "preprocess.synthesize", "--n", s.num_samples,
                                                    "--seed", s.seed, "--output", lay.generated]), log=run.log)
        entries = [data_entry(lay.generated)]
    for entry in entries:
        run.log(f"  input: {entry['path']} (sha256 {entry['sha256'][:12]})")
    run.manifest.data["data"] = entries
    run.manifest.save()
    return entries


def preprocess_command(s: RunSettings, lay: RunLayout, inputs: list[str]) -> list:
    """``python -m preprocess`` for the run; ``--eval_data`` goes in as a contamination file, so none of
    its items is trained on. The generated corpus (no ``--data``) is preprocessed with the quotas of
    ``configs/preprocess/generated_corpus.yaml`` (why: that file's comment)."""
    cmd = [PY, "-m", "preprocess", "--input", *inputs, "--output_dir", lay.data_dir, "--eval_size", s.eval_size,
           "--seed", s.seed, "--logic_style", s.logic_style,
           "--target_style", s.target_style]
    cmd += ["--cot_style", s.cot_style] if s.target_style != "pot" else []
    cmd += [] if s.data else ["--config", GENERATED_CORPUS_PREPROCESS]
    return cmd + (["--contamination", s.eval_data] if s.eval_data else [])


def stage_preprocess(run: Run, entries: list[dict]) -> None:
    """Validate, dedup, classify, CoT + verify and split (``python -m preprocess``). With ``--eval_data``
    nothing is held out and the file's items are left out of training (the contamination check)."""
    s, lay = run.settings, run.layout
    cmd = preprocess_command(s, lay, [e["path"] for e in entries])
    inputs = {"data": [e["sha256"] for e in entries], "eval_size": s.eval_size, "seed": s.seed,
              "target_style": s.target_style, "cot_style": s.cot_style}
    if not s.data:
        inputs["quotas"] = file_sha256(GENERATED_CORPUS_PREPROCESS)
    if s.logic_input:
        inputs["logic_style"] = s.logic_style
    if s.eval_data:
        inputs["eval_data"] = file_sha256(s.eval_data)
    outputs = [lay.conversations, lay.data_report] + ([lay.eval_items] if s.eval_size else [])
    # Logged (stderr copied to the console for the progress bars), so a failure names its log and cause.
    run_stage(run.manifest, "preprocess", inputs, outputs,
              lambda: run_command(lay, "preprocess", cmd, lay.log("preprocess"), tee_stderr=True), log=run.log)


def mindrecord_command(s: RunSettings, lay: RunLayout, conversations: Path | None = None) -> list:
    """``python -m research.llama3.records.mindrecord`` with the run's config, seq_length, template and tokenizer file,
    on ``conversations`` (default: the run's preprocessed ones).

    Samples that do not fit seq_length or the eval's ``max_new_tokens`` are dropped and counted
    (``--drop_overlong``), never truncated: a cut target trains on a CoT without its answer. ``--smoke``'s
    24 new tokens only keep its eval short, so there the budget is reported but nothing is dropped. With
    logic input the budget is the larger of eval.math's and eval.logic's (a thinking-style target is
    longer than a math one).
    """
    budget = max(s.max_new_tokens, s.logic_max_new_tokens) if s.logic_input else s.max_new_tokens
    cmd = [PY, "-m", "research.llama3.records.mindrecord", "--dataset_type", "qa",
           "--input_glob", conversations or lay.conversations,
           "--config", s.config, "--seq_length", s.seq_length, "--template", s.template,
           "--output_file", lay.mindrecord, "--max_new_tokens", budget]
    cmd += [] if s.smoke else ["--drop_overlong"]
    cmd += ["--packing"] if s.packing else []
    return cmd + (["--model_file", s.vocab_file] if s.vocab_file else [])


def stage_mindrecord(run: Run, conversations: Path | None = None) -> None:
    """Tokenize the conversations (default: the run's preprocessed ones; a bag's own file for a bag run)
    into ``train.mindrecord`` with the YAML's tokenizer and the run's template."""
    s, lay = run.settings, run.layout
    cmd = mindrecord_command(s, lay, conversations)
    source = run.manifest.stage_key("preprocess") if conversations is None else file_sha256(conversations)
    inputs = {"preprocess": source, "config": file_sha256(s.config),
              "seq_length": s.seq_length, "template": s.template, "packing": s.packing,
              "vocab_file": file_stamp(s.vocab_file) if s.vocab_file else None}
    run_stage(run.manifest, "mindrecord", inputs, [lay.mindrecord, lay.mindrecord_report],
              lambda: run_command(lay, "mindrecord", cmd, lay.log("mindrecord")), log=run.log)
    if conversations is None:
        note_budget(lay)


BUDGET_HEADING = "## Token budget (measured by research.llama3.records.mindrecord with the run's tokenizer)"


def note_budget(lay: RunLayout) -> None:
    """Append the MindRecord budget table (prompt/target tokens per category, samples over each budget,
    and those trained on their fallback, i.e. the expression alone under pot_cot) to ``data/report.md``,
    replacing an earlier copy. preprocess writes that report but has no tokenizer (it sits below
    research in the import direction), so the runner adds the measured table once it exists."""
    report = lay.data_dir / "report.md"
    if not report.exists() or not lay.mindrecord_report.exists():
        return
    records = json.loads(lay.mindrecord_report.read_text(encoding="utf-8"))
    head = report.read_text(encoding="utf-8").split(f"\n{BUDGET_HEADING}\n")[0].rstrip()
    table = render_table(records["budget"], records["seq_length"], records.get("max_new_tokens"))
    report.write_text(f"{head}\n\n{BUDGET_HEADING}\n\n{table}", encoding="utf-8")


def base_checkpoint(settings: RunSettings, layout: RunLayout) -> Path:
    """Where the run's base weights are: given, seeded random in the run, or the converted SmolLM2."""
    if settings.base_source == "given":
        return Path(settings.load_checkpoint)
    return layout.random_base if settings.base_source == "random_init" else DEFAULT_BASE_CKPT


def stage_base(run: Run) -> Path:
    """The base checkpoint in MindFormers names: ``--load_checkpoint``, seeded random weights for
    ``--smoke`` (``research.llama3.checkpoint.random_init``), or the embedded SmolLM2 GGUF converted once."""
    s, lay = run.settings, run.layout
    ckpt = base_checkpoint(s, lay)
    if s.base_source == "given":
        inputs, work = {"checkpoint": file_stamp(ckpt)}, lambda: None
    elif s.base_source == "random_init":
        inputs = {"random_init": file_sha256(s.config), "seed": s.seed}
        work = lambda: run_command(lay, "base", [PY, "-m", "research.llama3.checkpoint.random_init", "--config", s.config,  # noqa: E731
                                                 "--output", ckpt, "--seed", s.seed], lay.log("base"))
    else:
        inputs = {"smollm2_gguf": str(ckpt)}

        def work():
            if not ckpt.is_file():  # shared by every run of this checkout
                run_command(lay, "base", [PY, "-m", "research.llama3.checkpoint.convert_gguf", "--output", ckpt], lay.log("base"))
    run_stage(run.manifest, "base", inputs, [ckpt], work, log=run.log)
    run.log(f"  base: {ckpt}")
    return ckpt


def train_command(s: RunSettings, lay: RunLayout, base: Path, resume: bool) -> list:
    """The training command line for the run's backend and worker count."""
    args = ["--config", s.config, "--train_dataset", lay.mindrecord, "--load_checkpoint", base,
            "--output_dir", lay.output_dir, "--run_dir", lay.root, "--stop_step", s.stop_step, "--seed", s.seed]
    if s.backend == "torch":
        args += ["--device", s.device, "--quantization", s.quantization]
        if s.worker_num > 1:
            return [Path(PY).parent / "torchrun", "--nproc_per_node", s.worker_num,
                    "-m", "research.llama3.train.torch_finetune", *args]
        return [PY, "-m", "research.llama3.train.torch_finetune", *args]
    if s.save_steps:
        args += ["--save_steps", s.save_steps]
    if resume:
        args.append("--resume")
    if s.worker_num > 1:
        return ["bash", ROOT / "scripts" / "msrun_launcher.sh", "--worker_num", s.worker_num,
                "--log_dir", lay.msrun_dir, "--", *args]
    return [PY, "-m", "research.llama3.train.finetune", *args]


def _fresh_training(lay: RunLayout) -> None:
    """Remove what an earlier, unfinished training attempt left, so a fresh start mixes nothing in."""
    shutil.rmtree(lay.output_dir, ignore_errors=True)
    for path in (lay.loss_log, lay.lora, lay.params, lay.config):
        path.unlink(missing_ok=True)


def stage_train(run: Run, base: Path) -> None:
    """LoRA fine-tuning with a progress bar over steps (loss, tokens/s from ``loss.jsonl``); the full
    output goes to ``train.log``. With ``resume`` an unfinished training continues from its newest
    full-state checkpoint (MindFormers ``resume_training``)."""
    s, lay = run.settings, run.layout
    # A bag run has no base stage of its own: it records the stamp of its parent's base checkpoint.
    inputs = {"mindrecord": run.manifest.stage_key("mindrecord"),
              "base": run.manifest.stage_key("base") or file_stamp(base), "config": file_sha256(s.config), "stop_step": s.stop_step, "save_steps": s.save_steps,
              "seed": s.seed, "backend": s.backend, "device": s.device, "worker_num": s.worker_num,
              # only when set, so the stage key of a run from before --quantization existed is unchanged
              **({"quantization": s.quantization} if s.quantization != "none" else {})}

    def work():
        if not run.resume:
            if (lay.output_dir / "checkpoint").is_dir():
                run.log(f"  training starts afresh; to continue from its checkpoints instead, {lay.resume_hint}")
            _fresh_training(lay)
        cmd = [str(c) for c in train_command(s, lay, base, run.resume)]
        with open(lay.log("train"), "ab" if run.resume else "wb") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(lay), stdout=out, stderr=subprocess.STDOUT)
            try:
                rc = follow_training(proc, lay.loss_log, s.stop_step or None)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        if rc != 0:
            raise StageFailed(f"stage train failed ({exit_text(rc)}); see {lay.log('train')}:\n{_tail(lay.log('train'))}\n"
                              f"{lay.resume_hint}")

    run_stage(run.manifest, "train", inputs, [lay.lora, lay.loss_log, lay.params], work, log=run.log)


# --- evaluation ------------------------------------------------------------------------------------

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


def stage_bags(run: Run, base: Path) -> None:
    """``--bags N``: draw N random subsets of the training conversations (``preprocess.bagging``, seed
    = the run's), then for bag k a normal run directory ``bags/bag_NN/`` (its own ``run.json``, settings
    with seed + k) with its MindRecord and LoRA training on the run's base checkpoint. Each bag is a
    stage of the run's manifest too, so a finished bag is skipped when the run is repeated or resumed."""
    s, lay = run.settings, run.layout
    cmd = [PY, "-m", "preprocess.bagging", "--input", lay.conversations, "--n", s.bags, "--fraction", s.bag_fraction,
           "--seed", s.seed, "--output_dir", lay.bags_dir]
    run_stage(run.manifest, "bags", {"preprocess": run.manifest.stage_key("preprocess"), "n": s.bags,
                                     "fraction": s.bag_fraction, "seed": s.seed}, [lay.bags_dir / "bags.json"],
              lambda: run_command(lay, "bags", cmd, lay.log("bags")), log=run.log)
    for k in range(s.bags):
        bag_lay = lay.bag(k)
        bag_settings = replace(s, seed=s.seed + k, bags=0)

        def work(bag_lay=bag_lay, bag_settings=bag_settings):
            bag = Run(bag_lay, Manifest.create(bag_lay, bag_settings.to_dict()), bag_settings, resume=run.resume,
                      log=run.log)
            stage_mindrecord(bag, bag_lay.root / "conversations.json")
            stage_train(bag, base)

        run.log(f"  bag {k:02d}: {bag_lay.root} (seed {bag_settings.seed})")
        run_stage(run.manifest, f"bag_{k:02d}", {"bags": run.manifest.stage_key("bags"), "base": str(base),
                                                 "seed": s.seed + k},
                  [bag_lay.lora, bag_lay.loss_log], work, force=run.resume, log=run.log)


def finetune(run: Run) -> Path:
    """All stages of a fine-tuning run, in order; returns the report's path.

    Raises:
        StageFailed: a stage's process failed (the manifest records it ``failed``), or the held-out
            items have nothing for the run's task to grade.
    """
    s = run.settings
    run.total = 8 + (1 + s.bags if s.bags else 0)  # refined once preprocess says which graders run
    run.header("data")
    entries = stage_data(run)
    run.header("preprocess (validate, dedup, classify, CoT + verify, split)")
    stage_preprocess(run, entries)
    plan = eval_plan(s, run.layout)
    run.total = 6 + (1 if s.bags else 0) + len(plan)
    for grader in dict.fromkeys(step.name for step in plan):
        run.log(f"  graded with eval.{grader}")
    run.header(f"MindRecord (seq_length {s.seq_length}, template {s.template})")
    stage_mindrecord(run)
    run.header("base checkpoint")
    base = stage_base(run)
    run.header(f"LoRA fine-tuning ({s.backend}, {s.stop_step or 'all epochs'} steps, {s.worker_num} worker(s)"
               f"{', resumed' if run.resume else ''})")
    stage_train(run, base)
    params = json.loads(run.layout.params.read_text(encoding="utf-8"))
    run.log(f"  trainable params: {params['trainable']:,} of {params['total']:,} (ratio {params['ratio']:.6f}); "
            f"full log: {run.layout.log('train')}")
    if s.bags:
        run.header(f"bagging: {s.bags} adapters, each on {s.bag_fraction:.0%} of the training data")
        stage_bags(run, base)
    for step in plan:
        who = "before fine-tuning" if step.model == "base" else "after fine-tuning" + (
            f": vote of {len(step.adapters)} bag adapters" if step.adapters else "")
        run.header(f"evaluate {step.name} ({who}, {s.eval_backend})")
        stage_eval(run, step, base, limit=s.eval_limit)
    run.header("report")
    stage_report(run)
    return run.layout.report
