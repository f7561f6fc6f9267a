"""Real target tokens trained per second by the default job's LoRA step, before and after packing, in one run.

Usage: ``python benchmarks/packing_throughput.py --conversations RUN/data/conversations.json
[--config configs/smollm2_135m/finetune_lora_cpu.yaml] [--wide_config configs/smollm2_135m/finetune_lora_cpu_seq512.yaml]
[--steps 12] [--skip 2]``

The conversations are a default job's preprocessed training data (``bash scripts/finetune.sh`` writes
them to ``<run>/data/conversations.json``). Both rows write them with ``research.llama3.records.mindrecord``
as the runner does (``--drop_overlong``, the eval's 192-token budget) and train ``--steps`` steps of
``research.llama3.train.finetune`` from the SmolLM2 base (its GGUF converted once), one after the other:

* before: template ``vicuna_v1.1``, one sample a record (the job until this change);
* after: template ``vicuna_nosys``, ``--packing`` (several samples a record, each attending only to
  itself through the records' mask);
* after, wide: the same in ``--wide_config``'s longer window at the same tokens a step (seq 512 x
  batch 1), where more samples fit a record (``""`` leaves the row out).

A row's figure = batch x (mean target tokens a record: positions whose label is trained, over the
whole MindRecord, since the Trainer draws records at random) / (median ``step_s`` of the steps after
the first ``--skip``, which include graph compilation). Prints both rows, the ratio, and the machine
load (``os.getloadavg``) before and after each row: on a shared machine compare only rows of one run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))



def record_stats(mindrecord: str) -> dict:
    """Records, samples and mean trained target tokens a record (labels[1:] != -100) of a MindRecord."""
    import mindspore.dataset as ds
    import numpy as np

    targets, records = 0, 0
    for row in ds.MindDataset(mindrecord, columns_list=["labels"], shuffle=False).create_dict_iterator(
            output_numpy=True):
        targets += int((row["labels"][1:] != -100).sum())
        records += 1
    report = json.loads(Path(mindrecord + ".report.json").read_text())
    return {"records": records, "samples": report["samples"], "pad_share": report["pad_share"],
            "target_per_record": targets / records, "tokens_per_record": report["tokens"] / records}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", required=True, help="a default job's data/conversations.json")
    parser.add_argument("--config", default=str(ROOT / "configs/smollm2_135m/finetune_lora_cpu.yaml"),
                        help="MindFormers YAML (default: %(default)s)")
    parser.add_argument("--wide_config", default=str(ROOT / "configs/smollm2_135m/finetune_lora_cpu_seq512.yaml"),
                        help="YAML of the 'after, wide' row ('' to leave it out; default: %(default)s)")
    parser.add_argument("--steps", type=int, default=12, help="training steps per row (default: %(default)s)")
    parser.add_argument("--skip", type=int, default=2,
                        help="first steps left out of the median (compilation; default: %(default)s)")
    parser.add_argument("--work_dir", default=None, help="where records and runs go (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.steps <= args.skip:
        parser.error("--steps must exceed --skip")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-packing-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOCAL_DEFAULT_PATH": str(work / "mflog")}

    from research.llama3.checkpoint.convert_gguf import convert_gguf_to_mindformers
    from research.llama3.config.model_config import read_config

    rows = [("before", args.config, "vicuna_v1.1", False), ("after", args.config, "vicuna_nosys", True)]
    rows += [("after, wide", args.wide_config, "vicuna_nosys", True)] if args.wide_config else []
    base = work / "base.ckpt"
    if not base.exists():
        convert_gguf_to_mindformers(None, str(base))
    results = {}
    for name, config, template, packing in rows:
        batch = int(read_config(config)["runner_config"]["batch_size"])
        seq_length = int(read_config(config)["model"]["model_config"]["seq_length"])
        record = work / name.replace(", ", "_") / "train.mindrecord"
        cmd = [sys.executable, "-m", "research.llama3.records.mindrecord", "--dataset_type", "qa",
               "--input_glob", args.conversations, "--config", config, "--seq_length", str(seq_length),
               "--template", template, "--output_file", str(record), "--max_new_tokens", "192",
               "--drop_overlong"] + (["--packing"] if packing else [])
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        stats = record_stats(str(record))
        load_before = os.getloadavg()
        run_dir = record.parent / "run"
        subprocess.run([sys.executable, "-m", "research.llama3.train.finetune", "--config", config,
                        "--train_dataset", str(record), "--load_checkpoint", str(base),
                        "--output_dir", str(record.parent / "output"), "--run_dir", str(run_dir),
                        "--stop_step", str(args.steps)], check=True, env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        steps = [json.loads(line) for line in (run_dir / "loss.jsonl").read_text().splitlines()]
        step_s = statistics.median(s["step_s"] for s in steps[args.skip:])
        results[name] = {**stats, "batch x seq": f"{batch} x {seq_length}", "template": template,
                         "packing": packing, "step_s": step_s,
                         "target_per_s": batch * stats["target_per_record"] / step_s,
                         "load": [round(x, 1) for x in (*load_before, *os.getloadavg())]}
    print(f"{args.conversations}; median step time of steps {args.skip + 1}..{args.steps}")
    print("| row | batch x seq | template | packing | records | samples | pad share | target tokens/record | s/step "
          "| target tokens/s | load 1/5/15 min before; after |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        load = "/".join(map(str, r["load"][:3])) + "; " + "/".join(map(str, r["load"][3:]))
        print(f"| {name} | {r['batch x seq']} | {r['template']} | {r['packing']} | {r['records']} | {r['samples']} | {r['pad_share']:.3f} "
              f"| {r['target_per_record']:.1f} | {r['step_s']:.2f} | {r['target_per_s']:.1f} | {load} |")
    for name in list(results)[1:]:
        ratio = results[name]["target_per_s"] / results["before"]["target_per_s"]
        print(f"{name} / before: {ratio:.2f}x real target tokens per second")
    (work / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
