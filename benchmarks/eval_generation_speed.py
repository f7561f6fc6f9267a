"""Generation speed of the two evaluation backends on the same model and prompts, in one run.

Usage: ``python benchmarks/eval_generation_speed.py [--config YAML] [--load_checkpoint CKPT]
[--prompts 4] [--new_tokens 256] [--batch_size 4]``

Rows (greedy, exactly ``--new_tokens`` per prompt, EOS ignored so every row does the same work):

* transformers, KV cache (``use_cache=True``): what ``eval.* --backend transformers`` does;
* transformers, recomputation (``use_cache=False``): the whole sequence again for every token;
* MindFormers ``LlamaForCausalLM``, recomputation in graph mode (``--backend mindformers`` on CPU,
  where MindFormers' KV cache has no kernels); its graph compilation is timed separately.

Prints tokens/s (new tokens of all prompts / wall seconds) per row, the KV-cache speed-up over
both recomputing rows, and the machine load (``os.getloadavg``) before and after, since the
numbers are only comparable on an idle machine. Default model: the embedded SmolLM2-135M, its
GGUF converted to a MindFormers checkpoint in a temporary directory.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = [
    "计算 183.94 的 5 次方？",
    "解方程 -39x + 20 = 0",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "小明有 5 个苹果，他又买了 3 个，现在一共有几个苹果？",
    "What is the capital of France?",
    "计算 -3828.45 - 756.08 等于多少？",
    "Read the passage and answer the question below.",
    "The quick brown fox jumps over the lazy dog. What animal jumps?",
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs/smollm2_135m/finetune_lora_cpu.yaml"),
                        help="MindFormers YAML (model dims, tokenizer) (default: %(default)s)")
    parser.add_argument("--load_checkpoint", default=None,
                        help="MindFormers checkpoint; default: the embedded SmolLM2 GGUF, converted")
    parser.add_argument("--prompts", type=int, default=4, help="number of prompts (<= 8; default: %(default)s)")
    parser.add_argument("--new_tokens", type=int, default=256, help="new tokens per prompt (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=4, help="prompts per batch (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default: %(default)s; on a shared, loaded machine more "
                             "threads spin against each other: SmolLM2 ran 6x slower with 2 than with 1 here)")
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_DEFAULT_PATH", tempfile.mkdtemp(prefix="mflog-bench-"))

    import torch

    from eval.generate import generate
    from eval.mf_generate import MindFormersLM, mf_generate
    from preprocess.templates import DEFAULT_TEMPLATE, get_template
    from research.llama3.config.model_config import LlamaDims, read_model_config
    from research.llama3.checkpoint.to_hf import build_hf_model
    from research.llama3.tokenizers.tokenizer import tokenizer_from_config

    load_before = os.getloadavg()
    model_config = read_model_config(args.config)
    ckpt = args.load_checkpoint
    if ckpt is None:
        from research.llama3.checkpoint.convert_gguf import convert_gguf_to_mindformers

        ckpt = str(Path(tempfile.mkdtemp(prefix="bench-ckpt-")) / "base.ckpt")
        convert_gguf_to_mindformers(None, ckpt)
    tokenizer = tokenizer_from_config(args.config).hf
    template = get_template(DEFAULT_TEMPLATE)
    prompts = [template.render_prompt(p) for p in PROMPTS[:args.prompts]]
    longest = max(len(ids) for ids in tokenizer(prompts)["input_ids"])
    n_new = args.new_tokens * len(prompts)
    torch.set_num_threads(args.threads)
    print(f"model {args.config} ({ckpt}); {len(prompts)} prompts (longest {longest} tokens), "
          f"{args.new_tokens} new tokens each, batch {args.batch_size}, torch threads {torch.get_num_threads()}")

    rows = []

    def timed(name, fn):
        start = time.perf_counter()
        texts = fn()
        wall = time.perf_counter() - start
        rows.append((name, wall, n_new / wall))
        print(f"  {name}: {wall:.1f} s, {n_new / wall:.1f} tokens/s", flush=True)
        return texts

    hf = build_hf_model(ckpt, LlamaDims.from_mindformers(model_config))
    common = dict(batch_size=args.batch_size, show_progress=False, ignore_eos=True)
    kv = timed("transformers, KV cache", lambda: generate(hf, tokenizer, prompts, args.new_tokens, **common))
    re_hf = timed("transformers, recompute",
                  lambda: generate(hf, tokenizer, prompts, args.new_tokens, use_cache=False, **common))
    del hf
    lm = MindFormersLM(model_config, ckpt, seq_length=longest + args.new_tokens)
    start = time.perf_counter()
    mf_generate(lm, tokenizer, prompts[:min(args.batch_size, len(prompts))], 1, batch_size=args.batch_size,
                show_progress=False)
    compile_s = time.perf_counter() - start
    print(f"  mindformers graph compilation + 1 token: {compile_s:.1f} s")
    re_mf = timed("mindformers, recompute (graph mode)",
                  lambda: mf_generate(lm, tokenizer, prompts, args.new_tokens, **common))
    same = sum(a == b for a, b in zip(kv, re_mf))
    print(f"  greedy outputs equal: KV vs recompute (transformers) {sum(a == b for a, b in zip(kv, re_hf))}"
          f"/{len(prompts)}, transformers vs mindformers {same}/{len(prompts)}")

    print("  (MindFormers' own KV cache, use_past, runs on Ascend only and is not timed here; docs/eval.md)")

    kv_tps = rows[0][2]
    print("\n| backend | wall s | tokens/s | KV-cache speed-up over it |\n|---|---:|---:|---:|")
    for name, wall, tps in rows:
        print(f"| {name} | {wall:.1f} | {tps:.1f} | {kv_tps / tps:.2f}x |")
    print(f"\nload average (1/5/15 min) before {load_before}, after {os.getloadavg()}; cpus {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
