"""A fine-tuning run: every stage in order (:func:`finetune`)."""
from __future__ import annotations

import json
from pathlib import Path

from research.run.stages.base import stage_base
from research.run.stages.common import Run
from research.run.stages.data import stage_data, stage_mindrecord, stage_preprocess
from research.run.stages.evaluate import eval_plan, stage_eval, stage_report
from research.run.stages.train import stage_bags, stage_train

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

