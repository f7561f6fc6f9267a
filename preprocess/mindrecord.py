"""Convert fastchat conversation JSON into a MindRecord training file (MindFormers' record schema).

Flags follow MindFormers' ``research/llama3/llama_preprocess.py`` so users' habits carry over::

    python -m preprocess.mindrecord --dataset_type qa --input_glob 'data/conversations.json' \
        --config configs/smollm2_135m/finetune_lora_cpu.yaml --seq_length 128 \
        --output_file data/train.mindrecord [--model_file TOKENIZER_FILE] [--template vicuna_v1.1]

Record schema (as MindFormers r1.1 qa mode writes it): ``input_ids`` and ``labels``, int32, shape
[seq_length + 1]; ``input_ids`` = BOS + prompt + answer + EOS, padded with the tokenizer's pad id;
``labels`` equal ``input_ids`` on answer tokens (and EOS) and -100 on the BOS, the prompt and the
padding. MindFormers' LlamaForCausalLM shifts by one position itself.

Unlike MindFormers' script, no sample is masked away silently: samples longer than seq_length + 1 are
truncated and counted; a sample whose answer would be cut away entirely is dropped and listed with its
reason in the report (``<output_file>.report.json``).
"""
import argparse
import glob
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from tqdm import tqdm

from preprocess.atomic import write_json_atomic
from preprocess.templates import ChatTemplate, get_template

IGNORE_INDEX = -100


def encode_turn(tokenizer, template: ChatTemplate, question: str, answer: str,
                seq_length: int) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Tokenize one question/answer pair into a (input_ids, labels, status) training record.

    Args:
        tokenizer: ``research.llama3.tokenizer.Tokenizer`` (``encode``, ``bos_id``, ``eos_id``, ``pad_id``).
        template: the chat template; the same object renders prompts at prediction time.
        seq_length: model sequence length; records have seq_length + 1 ids.

    Returns:
        ``input_ids`` int32 [seq_length + 1], ``labels`` int32 [seq_length + 1], the number of
        real (non-padding) tokens, and a status: ``"ok"``, ``"truncated"`` (answer cut short) or
        ``"dropped"`` (no answer token fits; the arrays are then meaningless). The count is returned
        because the pad id may equal the EOS id (SmolLM2), so it cannot be recovered from the ids.
    """
    prompt_ids = [tokenizer.bos_id] + tokenizer.encode(template.render_prompt(question))
    answer_ids = tokenizer.encode(template.render_answer(answer)) + [tokenizer.eos_id]
    ids = prompt_ids + answer_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    total = seq_length + 1
    status = "ok"
    if len(ids) > total:
        status = "truncated" if len(prompt_ids) < total else "dropped"
        ids, labels = ids[:total], labels[:total]
    pad = total - len(ids)
    input_ids = np.array(ids + [tokenizer.pad_id] * pad, dtype=np.int32)
    label_arr = np.array(labels + [IGNORE_INDEX] * pad, dtype=np.int32)
    return input_ids, label_arr, len(ids), status


def load_conversations(paths: list[str]) -> list[dict]:
    """Read fastchat JSON files (a list of ``{"id", "conversations": [{"from", "value"}, ...]}``).

    Raises:
        ValueError: a file is not a JSON list, naming the file.
    """
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of conversations, got {type(data).__name__}")
        records.extend(data)
    return records


def convert(conversations: list[dict], tokenizer, template: ChatTemplate, seq_length: int,
            output_file: str) -> dict:
    """Write a MindRecord file (plus its ``.db`` index) atomically and return the conversion report.

    The file pair is written in a temporary directory beside ``output_file`` and moved into place
    only when complete (MindRecord's header names its files by basename, so the names are kept).

    Returns:
        dict with ``records``, ``truncated``, ``dropped`` (list of ``{"id", "reason"}``),
        ``skipped`` (malformed conversations, same form), ``tokens`` (non-pad input tokens),
        ``pad_share`` and ``seq_length``.
    """
    from mindspore.mindrecord import FileWriter

    out_dir = os.path.dirname(os.path.abspath(output_file))
    os.makedirs(out_dir, exist_ok=True)
    name = os.path.basename(output_file)
    report = {"records": 0, "truncated": 0, "dropped": [], "skipped": [], "tokens": 0, "seq_length": seq_length}
    rows = []
    for conv in tqdm(conversations, desc="tokenize", unit="conv"):
        turns = conv.get("conversations") if isinstance(conv, dict) else None
        cid = conv.get("id") if isinstance(conv, dict) else None
        if (not isinstance(turns, list) or len(turns) < 2 or turns[0].get("from") != "human"
                or turns[1].get("from") != "gpt"):
            report["skipped"].append({"id": cid, "reason": "not a human/gpt conversation"})
            continue
        input_ids, labels, n_tokens, status = encode_turn(tokenizer, template, turns[0]["value"], turns[1]["value"],
                                                seq_length)
        if status == "dropped":
            report["dropped"].append({"id": cid, "reason": f"prompt alone exceeds seq_length+1={seq_length + 1}"})
            continue
        report["truncated"] += status == "truncated"
        report["tokens"] += n_tokens
        rows.append({"input_ids": input_ids, "labels": labels})
    if not rows:
        raise ValueError(f"no records to write to {output_file}: {len(report['dropped'])} dropped, "
                         f"{len(report['skipped'])} skipped")
    report["records"] = len(rows)
    report["pad_share"] = round(1 - report["tokens"] / (len(rows) * (seq_length + 1)), 4)

    tmp_dir = tempfile.mkdtemp(prefix=".mindrecord-", dir=out_dir)
    try:
        writer = FileWriter(os.path.join(tmp_dir, name), shard_num=1, overwrite=True)
        writer.add_schema({"input_ids": {"type": "int32", "shape": [-1]},
                           "labels": {"type": "int32", "shape": [-1]}}, "conversation records")
        writer.write_raw_data(rows)
        writer.commit()
        for suffix in ("", ".db"):
            os.replace(os.path.join(tmp_dir, name + suffix), os.path.join(out_dir, name + suffix))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    write_json_atomic(output_file + ".report.json", report)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_type", default="qa", choices=["qa"],
                        help="record layout; qa = fastchat conversations (MindFormers' qa mode)")
    parser.add_argument("--input_glob", required=True, help="glob of fastchat conversation JSON files")
    parser.add_argument("--config", required=True,
                        help="MindFormers YAML whose processor.tokenizer names the model's tokenizer")
    parser.add_argument("--model_file", default=None, help="tokenizer file; overrides the YAML's path")
    parser.add_argument("--seq_length", type=int, required=True, help="model seq_length; records get +1 ids")
    parser.add_argument("--output_file", required=True, help="output .mindrecord path (a .db index is written beside)")
    parser.add_argument("--template", default="vicuna_v1.1", help="chat template name (preprocess.templates)")
    args = parser.parse_args(argv)

    from research.llama3.tokenizer import tokenizer_from_config

    paths = sorted(glob.glob(args.input_glob))
    if not paths:
        parser.error(f"--input_glob matched no file: {args.input_glob}")
    tokenizer = tokenizer_from_config(args.config, args.model_file)
    report = convert(load_conversations(paths), tokenizer, get_template(args.template), args.seq_length,
                     args.output_file)
    print(f"wrote {report['records']} records to {args.output_file} (truncated {report['truncated']}, "
          f"dropped {len(report['dropped'])}, skipped {len(report['skipped'])}, pad share {report['pad_share']:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
