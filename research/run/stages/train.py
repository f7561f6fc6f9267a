"""LoRA training (``train``) on the MindFormers or torch backend with its progress bar, and ``--bags``:
adapters trained on random subsets of the data, each in a run directory of its own (``bag_NN``)."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from research.rundir.layout import ROOT, RunLayout
from research.rundir.manifest import Manifest, file_sha256, file_stamp, run_stage
from research.run.progress import follow_training
from research.run.settings import RunSettings
from research.run.stages.common import PY, Run, StageFailed, exit_text, log_tail, run_command, subprocess_env
from research.run.stages.data import stage_mindrecord

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
            raise StageFailed(f"stage train failed ({exit_text(rc)}); see {lay.log('train')}:\n{log_tail(lay.log('train'))}\n"
                              f"{lay.resume_hint}")

    run_stage(run.manifest, "train", inputs, [lay.lora, lay.loss_log, lay.params], work, log=run.log)



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

