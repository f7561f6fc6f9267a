"""The data stages: the input files (``data``), ``python -m preprocess`` (``preprocess``) and the
MindRecord of the training conversations (``mindrecord``), with the measured token budget added to
``data/report.md``."""
from __future__ import annotations

import json
from pathlib import Path

from preprocess.budget import render_table
from research.rundir.layout import GENERATED_CORPUS_PREPROCESS, RunLayout
from research.rundir.manifest import data_entry, file_sha256, file_stamp, run_stage
from research.run.settings import RunSettings
from research.run.stages.common import PY, Run, run_command

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

