"""LoRA training throughput on one GPU: our torch path vs a plain transformers Trainer + PEFT baseline.

Both train the same Llama-3-8B-shaped model (random bf16 weights: hidden 4096, 32 layers, 32 heads,
8 kv heads, intermediate 14336, vocab 128256) with the YAML's LoRA (``pet_config``) at seq_length 512
on the same records, one after the other in this process, and print tokens/s, peak memory and MFU.

- ours: ``research.llama3.train.torch_finetune`` pieces: records packed into full rows (``packed_rows``),
  block-causal attention from restarting position ids (SDPA, or flash-attention 2 when installed),
  logits only at supervised positions (``CausalLMLoss``), fused AdamW, ``torch.compile`` per
  decoder layer.
- baseline: ``transformers.Trainer`` (bf16, AdamW) on the records as MindRecord stores them
  (padded to seq_length), ``attention_mask`` for the padding, full logits.

tokens/s counts real (non-padding) tokens, so both columns measure the same useful work.
MFU = achieved model FLOP/s / peak (``--peak_tflops``; H100/H200 SXM dense bf16: 989). Model FLOPs
per real token, LoRA with a frozen base (no weight gradients for the base):
``4 * N_linear`` (forward + input-gradient matmuls of the decoder) ``+ 12 * L * d * c`` (attention
scores and values, forward 4, backward 8; ``c`` = mean attended context of a token within its record)
``+ 4 * V * d * s`` (lm_head forward + input gradient on the supervised share ``s`` of tokens).
The common 6N convention is printed too.

Usage (GPU)::

    python benchmarks/torch_lora_throughput.py [--config configs/llama3_8b/finetune_lora_910b_1p_seq512.yaml]
        [--train_dataset data/train.mindrecord] [--batch_size 8] [--steps 10] [--warmup 3]

``--tiny`` runs a 2-layer model on CPU (a check of the script itself; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from research.llama3.config.model_config import LlamaDims, read_model_config  # noqa: E402
from research.llama3.checkpoint.peft_adapter import peft_lora_config  # noqa: E402
from research.llama3.train.torch_data import packed_rows, read_mindrecord  # noqa: E402
from research.llama3.train.torch_loop import CausalLMLoss  # noqa: E402

LLAMA3_8B = dict(vocab_size=128256, hidden_size=4096, num_layers=32, num_heads=32, n_kv_heads=8,
                 intermediate_size=14336, rms_norm_eps=1e-5, theta=500000.0, max_position=8192,
                 tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001, pad_token_id=128002)
TINY = dict(LLAMA3_8B, vocab_size=512, hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2,
            intermediate_size=128, bos_token_id=1, eos_token_id=2, pad_token_id=0)


def synthetic_records(n, seq_length, vocab, pad_id, rng):
    """Records like research.llama3.records.mindrecord's: [BOS prompt answer EOS pad...], labels -100 on prompt and padding.

    Lengths uniform in [seq_length / 6, seq_length + 1], prompt 40-60 % of a record.
    """
    ids = np.full((n, seq_length + 1), pad_id, np.int64)
    labels = np.full((n, seq_length + 1), -100, np.int64)
    for i in range(n):
        length = int(rng.integers(seq_length // 6, seq_length + 2))
        prompt = int(length * rng.uniform(0.4, 0.6))
        ids[i, :length] = rng.integers(3, vocab, length)
        labels[i, prompt:length] = ids[i, prompt:length]
    return ids, labels


def real_lengths(labels):
    """Tokens of each record up to its last supervised one (its EOS), as packed_rows counts them."""
    has = labels != -100
    return np.where(has.any(1), labels.shape[1] - np.argmax(has[:, ::-1], axis=1), 0)


def build_model(dims, pet, device, attn):
    from peft import get_peft_model
    from transformers import LlamaForCausalLM

    config = dims.to_hf_config()
    config._attn_implementation = attn
    previous = torch.get_default_dtype()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)  # random weights, allocated where they run
    finally:
        torch.set_default_dtype(previous)
    return get_peft_model(model, peft_lora_config(pet, dims.num_layers), autocast_adapter_dtype=True)


def flops_per_token(dims, mean_context, supervised_share):
    d, L, kv = dims.hidden_size, dims.num_layers, dims.n_kv_heads * dims.head_dim
    n_linear = L * (d * d * 2 + d * kv * 2 + 3 * d * dims.intermediate_size)
    lora = 4 * n_linear + 12 * L * d * mean_context + 4 * dims.vocab_size * d * supervised_share
    six_n = 6 * (n_linear + dims.vocab_size * d) + 12 * L * d * mean_context
    return lora, six_n


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def run_ours(dims, pet, ids, labels, args, device):
    attn = "sdpa"
    try:
        import flash_attn  # noqa: F401

        attn = "flash_attention_2"
    except ImportError:
        pass
    model = build_model(dims, pet, device, attn).train()
    if args.compile:
        for layer in model.base_model.model.model.layers:
            layer.compile()
    rows = packed_rows(ids, labels, dims.pad_token_id, -100)
    tensors = {k: torch.from_numpy(v) for k, v in rows.items()}
    step_fn = CausalLMLoss(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), fused=device == "cuda")
    n_rows = tensors["tokens"].shape[0]
    real_tokens = 0
    times = []
    for step in range(args.warmup + args.steps):
        pick = torch.arange(step * args.batch_size, (step + 1) * args.batch_size) % n_rows
        batch = {k: v[pick].to(device, non_blocking=True) for k, v in tensors.items()}
        if attn == "flash_attention_2":
            # transformers' FA2 path finds packed records from position_ids only in a single row.
            batch = {k: v.reshape(1, -1) for k, v in batch.items()}
        sync(device)
        t = time.perf_counter()
        loss, count = step_fn(**batch)
        (loss / count.clamp(min=1)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - t)
            real_tokens += _real_in_packed(batch["targets"])
    extras = (", compile" if args.compile else "") + (", fused AdamW" if device == "cuda" else "")
    return {"name": f"ours (packed, {attn}{extras})",
            "tokens_per_s": real_tokens / sum(times), "step_s": float(np.mean(times)),
            "rows_per_step": args.batch_size, "attention": attn}


def _real_in_packed(targets) -> int:
    """Real tokens in packed rows: every position before a row's trailing padding block, which starts
    after the row's last supervised position (each record ends with its supervised EOS)."""
    supervised = targets != -100
    return int(torch.where(supervised.any(1), targets.shape[1] - supervised.flip(1).int().argmax(1), 0).sum())


def run_baseline(dims, pet, ids, labels, args, device, workdir):
    from transformers import Trainer, TrainerCallback, TrainingArguments

    model = build_model(dims, pet, device, "sdpa")
    seq = ids.shape[1] - 1
    data = [{"input_ids": torch.from_numpy(i[:seq]), "labels": torch.from_numpy(lab[:seq]),
             "attention_mask": torch.from_numpy((np.arange(seq) < n).astype(np.int64))}
            for i, lab, n in zip(ids, labels, real_lengths(labels))]

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.tokens, self._t, self.step = [], 0, 0.0, 0

        def on_step_begin(self, *a, **k):
            sync(device)
            self._t = time.perf_counter()

        def on_step_end(self, *a, **k):
            sync(device)
            if self.step >= args.warmup:
                self.times.append(time.perf_counter() - self._t)
                start = (self.step * args.batch_size) % len(data)
                self.tokens += sum(int(data[(start + j) % len(data)]["attention_mask"].sum())
                                   for j in range(args.batch_size))
            self.step += 1

    timer = Timer()
    training_args = TrainingArguments(
        output_dir=str(workdir), per_device_train_batch_size=args.batch_size, max_steps=args.warmup + args.steps,
        learning_rate=1e-4, adam_beta2=0.95, max_grad_norm=1.0, bf16=device == "cuda", use_cpu=device == "cpu",
        logging_steps=1000, save_strategy="no", report_to=[], dataloader_num_workers=0,
        remove_unused_columns=False, seed=0, disable_tqdm=True)
    # The timer's token count assumes unshuffled order: the baseline then sees rows 0, 1, 2 ... as ours does.
    trainer = Trainer(model=model, args=training_args, train_dataset=data, callbacks=[timer])
    trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(data)
    trainer.train()
    return {"name": "baseline (transformers Trainer + peft, padded, sdpa)",
            "tokens_per_s": timer.tokens / sum(timer.times), "step_s": float(np.mean(timer.times)),
            "rows_per_step": args.batch_size, "attention": "sdpa"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs/llama3_8b/finetune_lora_910b_1p_seq512.yaml"),
                        help="YAML whose pet_config (LoRA) is used")
    parser.add_argument("--train_dataset", default=None, help="MindRecord of seq_length records (default: synthetic)")
    parser.add_argument("--seq_length", type=int, default=512)
    parser.add_argument("--records", type=int, default=512, help="synthetic records")
    parser.add_argument("--batch_size", type=int, default=8, help="rows per step (packed rows for ours)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocator)")
    parser.add_argument("--no_compile", dest="compile", action="store_false", help="skip torch.compile")
    parser.add_argument("--peak_tflops", type=float, default=989.0, help="device peak dense bf16 TFLOP/s")
    parser.add_argument("--tiny", action="store_true", help="2-layer model on CPU: checks the script only")
    parser.add_argument("--only", choices=["ours", "baseline"], default=None, help="run one side only")
    args = parser.parse_args(argv)

    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device; use --tiny for a CPU check of the script")
    if args.tiny:
        args.compile = False
    pet = read_model_config(args.config)["pet_config"]
    dims = LlamaDims(**(TINY if args.tiny else LLAMA3_8B))
    rng = np.random.default_rng(0)
    if args.train_dataset:
        ids, labels = read_mindrecord(args.train_dataset, args.seq_length)
        ids = np.where(ids >= dims.vocab_size, ids % dims.vocab_size, ids)
    else:
        ids, labels = synthetic_records(args.records, args.seq_length, dims.vocab_size, dims.pad_token_id, rng)
    lengths = real_lengths(labels)
    supervised = float((labels[:, 1:] != -100).sum() / max(1, lengths.sum()))
    mean_context = float((lengths * (lengths + 1) / 2).sum() / max(1, lengths.sum()))
    lora_flops, six_n = flops_per_token(dims, mean_context, supervised)
    device_name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"device: {device_name}; torch {torch.__version__}; records {len(ids)}, seq_length {args.seq_length}, "
          f"pad share {1 - lengths.sum() / (len(ids) * args.seq_length):.1%}, supervised share {supervised:.1%}")
    print(f"model FLOPs per real token: LoRA count {lora_flops / 1e9:.2f} GFLOP "
          f"(6N convention {six_n / 1e9:.2f} GFLOP), mean context {mean_context:.0f}")

    results = []
    for side in ("ours", "baseline"):
        if args.only and side != args.only:
            continue
        if device == "cuda":
            torch._dynamo.reset()  # compiled layers of the previous side would keep its model alive
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        with tempfile.TemporaryDirectory() as tmp:
            result = (run_ours(dims, pet, ids, labels, args, device) if side == "ours"
                      else run_baseline(dims, pet, ids, labels, args, device, tmp))
        result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
        result["mfu"] = result["tokens_per_s"] * lora_flops / (args.peak_tflops * 1e12)
        result["mfu_6n"] = result["tokens_per_s"] * six_n / (args.peak_tflops * 1e12)
        results.append(result)
        gc.collect()
        print(f"{result['name']}: {result['tokens_per_s']:.0f} tokens/s, {result['step_s']:.3f} s/step, "
              f"peak {result['peak_gib']:.1f} GiB, MFU {result['mfu']:.1%} (6N: {result['mfu_6n']:.1%})", flush=True)
    if len(results) == 2:
        print(f"speed-up ours / baseline: {results[0]['tokens_per_s'] / results[1]['tokens_per_s']:.2f}x "
              f"(targets: >= 1.5x, MFU >= 40% on an H100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
