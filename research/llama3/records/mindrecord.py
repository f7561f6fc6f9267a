"""Convert fastchat conversation JSON into a MindRecord training file (MindFormers' record schema).

Flags follow MindFormers r1.1 ``research/llama3/llama_preprocess.py`` so users' habits carry over::

    python -m research.llama3.records.mindrecord --dataset_type qa --input_glob 'data/*.json' \\
        --model_file tokenizer.model --seq_length 256 --output_file train.mindrecord
    python -m research.llama3.records.mindrecord --dataset_type qa --input_glob data/conversations.json \\
        --config configs/smollm2_135m/finetune_lora_cpu.yaml --seq_length 128 --output_file train.mindrecord

The tokenizer is the one the YAML's ``processor.tokenizer`` names (``--model_file`` overrides its
file), or without ``--config`` the ``--tokenizer`` kind (MindFormers' flag, default llama3).

Record schema (as MindFormers r1.1 qa mode writes it): ``input_ids`` and ``labels``, int32, shape
[seq_length + 1]; ``input_ids`` = BOS + per round (prompt + answer + turn end), padded with the
tokenizer's pad id (the YAML's ``pad_token_id`` when it sets one); ``labels`` equal ``input_ids`` on
answer and turn-end tokens and are -100 on BOS, every prompt (each human turn) and the padding.
MindFormers' LlamaForCausalLM shifts by one position itself.

Unlike MindFormers' script, no sample is masked away silently: samples longer than seq_length + 1
are truncated and listed; a sample with no answer token left is dropped and listed; malformed
conversations are skipped and listed with file, index and field. All go to ``<output>.report.json``
together with the padding share with and without ``--packing``.

It lives in research/llama3/ (where MindFormers keeps ``llama_preprocess.py``), not in preprocess/,
because it needs the model's tokenizer (``research.llama3.tokenizers.tokenizer``) and preprocess never imports research.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import glob
import json
import os
import shutil
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from multiprocessing import get_context

import numpy as np
from tqdm import tqdm

from preprocess.atomic import (OutputError, finish_commit, make_temp_dir, remove_stale_temp_dirs,
                               write_json_atomic)
from preprocess.budget import budget_warnings, over_budget, render_table, split_lengths, summarize
from preprocess.readers import undecodable
from preprocess.templates import DEFAULT_TEMPLATE, TEMPLATES, ChatTemplate, get_template
from preprocess.cli import Parser
from research.llama3.records.encode import (conversation_turns, encode_conversation, first_fit_decreasing,
                                            fit_length, pad_records)

SCHEMA = {"input_ids": {"type": "int32", "shape": [-1]}, "labels": {"type": "int32", "shape": [-1]}}
# What a packed record adds, in the order of LlamaForCausalLM.construct's arguments after ``labels``
# (input_position, position_ids, attention_mask): the Trainer passes dataset columns positionally.
PACKED_COLUMNS = ("input_position", "position_ids", "attention_mask")
# Added to the attention scores a query may see (0 elsewhere). MindFormers 1.9's LlamaModel casts a
# given attention_mask to uint8 and its dense (non-flash) attention adds it to the scores as is, so
# -10000 cannot be written; softmax is unchanged by a constant added to every visible score, and
# exp(-255) leaves the hidden keys no weight in float32.
VISIBLE = 255
TOKENIZER_KINDS = {"llama3": "Llama3Tokenizer", "gguf": "GGUFTokenizer", "qwen2": "Qwen2Tokenizer"}
_CHUNK = 512  # conversations per task and per write: amortizes pickling; a packing block


def packed_columns(lengths: Sequence[int], seq_length: int) -> dict[str, np.ndarray]:
    """The columns that keep packed samples apart: per-sample positions and a block-diagonal mask.

    Args:
        lengths: token counts of the samples in one record, in order (sum at most seq_length + 1);
            the rest of the record is padding, which forms one more block.
        seq_length: the model's seq_length; the model sees ``input_ids[:-1]``, so the columns
            describe those seq_length positions.

    Returns:
        ``input_position`` and ``position_ids``: int32 [seq_length], 0 at every sample's first token
        (MindFormers' dense path takes rotary positions 0..seq_length-1 instead; rotary attention
        depends only on the distance between query and key, and the mask keeps both in one sample);
        ``attention_mask``: int32 [1, seq_length, seq_length], ``VISIBLE`` where query i may attend
        key j (same sample, j <= i), else 0.
    """
    starts = np.cumsum([0, *lengths])
    seg = np.full(seq_length, len(lengths), dtype=np.int32)
    positions = np.arange(seq_length, dtype=np.int32)
    for k, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
        seg[a:b] = k
        positions[a:b] -= a
    tail = min(int(starts[-1]), seq_length)
    positions[tail:] -= tail
    idx = np.arange(seq_length)
    visible = (seg[:, None] == seg[None, :]) & (idx[:, None] >= idx[None, :])
    return {"input_position": positions, "position_ids": positions.copy(),
            "attention_mask": (visible * VISIBLE).astype(np.int32)[None]}


def packed_schema(seq_length: int) -> dict:
    """MindRecord schema of packed records: :data:`SCHEMA` and :data:`PACKED_COLUMNS` (int32)."""
    shapes = {"input_position": [seq_length], "position_ids": [seq_length],
              "attention_mask": [1, seq_length, seq_length]}
    return {**SCHEMA, **{c: {"type": "int32", "shape": shapes[c]} for c in PACKED_COLUMNS}}
# Worker state, set once per process by _init_worker (the encoder is too costly to send per task).
_STATE: dict = {}


def _init_worker(encode, template, bos_id, eos_id, pad_id, total, packing, max_new_tokens, drop_overlong):
    _STATE.update(encode=encode, template=template, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, total=total,
                  packing=packing, max_new_tokens=max_new_tokens, drop_overlong=drop_overlong)


def _convert_chunk(chunk: list[tuple[str, str, object]]) -> tuple:
    """Turn ``(where, id, conversation)`` items into finished records.

    Everything but writing happens here, in a worker when there are some: a chunk goes back as two
    int32 arrays (one pickled buffer each) instead of per-record objects, so the writing process
    does little besides ``FileWriter``. Packing groups samples within the chunk only.

    Returns:
        ``(entries, input_ids [n, total], labels [n, total], groups, budget)``: entries are
        ``(report key, {"where", "id", "reason"})``; groups are the written samples' token counts, one
        list per record;
        budget has ``(category, prompt tokens, target tokens)`` of every encoded sample (the
        conversation's ``category`` field, "unknown" without one), before any cut or drop.
    """
    s, total = _STATE, _STATE["total"]
    entries, samples, budget = [], [], []
    for where, cid, conv in chunk:
        try:
            turns, note = conversation_turns(conv, where)
        except ValueError as e:
            entries.append(("skipped", {"where": where, "id": cid, "reason": str(e)}))
            continue
        ids, labels = encode_conversation(s["encode"], s["template"], turns, s["bos_id"], s["eos_id"])
        prompt, target = split_lengths(labels)
        budget.append((str(conv.get("category") or "unknown"), prompt, target))
        # Without drop_overlong an over-long sample is truncated, unless its fallback fits seq_length.
        limit = s["max_new_tokens"] if s["drop_overlong"] else None
        over = over_budget(prompt, target, total - 1, limit)
        if over and conv.get("fallback_conversations") is not None:
            short = _fallback(conv, where)
            if isinstance(short, str):
                entries.append(("skipped", {"where": where, "id": cid, "reason": short}))
                continue
            short_prompt, short_target = split_lengths(short[1])
            if not over_budget(short_prompt, short_target, total - 1, limit):
                entries.append(("shortened", {"where": where, "id": cid, "category": budget[-1][0],
                                              "reason": f"over budget: {over}; trained on its fallback_conversations"}))
                (ids, labels), over = short, None
        if over and s["drop_overlong"]:
            entries.append(("dropped", {"where": where, "id": cid, "reason": f"over budget: {over}"}))
            continue
        ids, labels, status, reason = fit_length(ids, labels, total)
        if status != "ok" or note:
            key = "notes" if status == "ok" else status
            entries.append((key, {"where": where, "id": cid, "reason": "; ".join(filter(None, [reason, note]))}))
        if status != "dropped":
            samples.append((ids, labels))
    groups = first_fit_decreasing(samples, total, size=lambda x: len(x[0])) if s["packing"] else [[x] for x in samples]
    ids2d, labels2d = pad_records(groups, total, s["pad_id"])
    return entries, ids2d, labels2d, [[len(x[0]) for x in g] for g in groups], budget


def _fallback(conv: dict, where: str) -> tuple[list[int], list[int]] | str:
    """The encoded ``fallback_conversations`` of ``conv`` (``(ids, labels)``), or why they are unusable."""
    try:
        turns, _ = conversation_turns({"conversations": conv["fallback_conversations"]},
                                      f"{where}.fallback_conversations")
    except ValueError as e:
        return str(e)
    s = _STATE
    return encode_conversation(s["encode"], s["template"], turns, s["bos_id"], s["eos_id"])


_JSONL_HINT = ("; this is JSONL items (one JSON object a line), not conversations: run python -m preprocess first "
               "and give its conversations.json")


def load_conversations(paths: Sequence[str]) -> Iterator[tuple[str, str, object]]:
    """Yield ``(where, id, conversation)`` from fastchat JSON files (each a JSON list).

    A ``.preprocess-commit`` directory beside a file (a preprocess run killed while committing its
    outputs, ``preprocess.atomic.write_set_atomic``) is completed first, so the file read belongs
    to one whole output set.

    ``where`` is ``file[index]``; ``id`` is the conversation's ``id`` or that ``where``.

    Raises:
        ValueError: a file is not valid UTF-8 JSON (truncated, nested too deeply, an integer over
            Python's 4300 digits) or not a JSON list, naming the file (and line and column).
    """
    for path in paths:
        # conversations.json of a preprocess run killed mid-commit: complete that run's set first.
        try:
            finish_commit(os.path.dirname(path) or ".", "preprocess")  # preprocess.pipeline.OUTPUT_SET
        except OSError as exc:
            raise ValueError(f"{path}: its directory holds an unfinished preprocess commit that cannot be "
                             f"completed ({exc}); rerun python -m preprocess") from None
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read().decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: invalid UTF-8 at byte {exc.start}") from None
        except json.JSONDecodeError as exc:
            # One object, then more data: a JSONL file (contest items, a preprocess items.jsonl).
            hint = _JSONL_HINT if exc.msg == "Extra data" and exc.doc[:exc.pos].strip().endswith("}") else ""
            raise ValueError(f"{path}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{hint}") from None
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{path}: not JSON: {undecodable(exc)}") from None
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of conversations, got {type(data).__name__}"
                             f"{_JSONL_HINT if isinstance(data, dict) else ''}")
        name = os.path.basename(path)
        for i, conv in enumerate(data):
            yield _located(name, i, conv)


def _located(prefix: str, index: int, conv) -> tuple[str, str, object]:
    where = f"{prefix}[{index}]"
    cid = conv.get("id") if isinstance(conv, dict) else None
    return where, str(cid) if cid is not None else where, conv


def _chunks(items: Iterable, n: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _converted(items, tokenizer, template, total, packing, num_workers, max_new_tokens,
               drop_overlong) -> Iterator[tuple]:
    args = (tokenizer.text_encoder(), template, tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, total, packing,
            max_new_tokens, drop_overlong)
    if num_workers <= 0:
        _init_worker(*args)
        yield from map(_convert_chunk, _chunks(items, _CHUNK))
        return
    # fork would copy MindSpore's and tokenizers' threads in a broken state; spawn starts clean.
    with get_context("spawn").Pool(num_workers, initializer=_init_worker, initargs=args) as pool:
        # A bounded window, not pool.imap: imap queues every chunk at once, and when the writer is
        # the slower side all finished records would pile up in this process's memory.
        window = deque()
        for chunk in _chunks(items, _CHUNK):
            window.append(pool.apply_async(_convert_chunk, (chunk,)))
            if len(window) > 2 * num_workers:
                yield window.popleft().get()
        while window:
            yield window.popleft().get()


def output_files(output_file: str, file_partition: int) -> list[str]:
    """The data files FileWriter writes: ``output_file`` itself, or ``output_file0..N-1`` for N shards."""
    if file_partition == 1:
        return [output_file]
    return [f"{output_file}{i}" for i in range(file_partition)]


@contextlib.contextmanager
def _writer_errors(output_file: str, out_dir: str) -> Iterator[None]:
    """Turn a failure inside MindRecord's FileWriter into one ``OutputError`` line.

    Its C++ writer reports a full disk or a file-size limit as a RuntimeError wrapped in a framework
    banner ("Failed to seekp file", "Failed to write data"); the ``[ERROR]`` line is the cause.
    """
    try:
        yield
    except (RuntimeError, OSError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        cause = next((line[len("[ERROR]"):].strip() for line in lines if line.startswith("[ERROR]")),
                     lines[0] if lines else repr(exc))
        free = shutil.disk_usage(out_dir).free / 2**20
        raise OutputError(getattr(exc, "errno", None) or errno.EIO,
                          f"cannot write {output_file}: MindRecord's writer failed ({cause}); {free:.1f} MiB "
                          f"free in {out_dir} (a full disk or a file-size limit?); no output was replaced") from exc


def convert(conversations, tokenizer, template: ChatTemplate, seq_length: int, output_file: str, *,
            packing: bool = False, file_partition: int = 1, num_workers: int = 0,
            max_new_tokens: int | None = None, drop_overlong: bool = False) -> dict:
    """Write MindRecord file(s) with their ``.db`` indexes atomically and return the conversion report.

    The files are written in a temporary directory beside ``output_file`` and moved into place only
    when complete (MindRecord's header names its shards by basename, so the names are kept).

    Args:
        conversations: fastchat conversation dicts, or ``(where, id, conversation)`` triples from
            ``load_conversations``.
        tokenizer: ``research.llama3.tokenizers.tokenizer.Tokenizer``.
        template: the chat template; the same object renders prompts at prediction time.
        seq_length: model sequence length; records have seq_length + 1 ids.
        packing: put several samples into one record (:func:`first_fit_decreasing` within blocks
            of 512 conversations) and write :data:`PACKED_COLUMNS` (:func:`packed_columns`) so that
            no sample attends to another; ``research.llama3.train.finetune`` feeds them to the model.
        file_partition: number of MindRecord shards (MindFormers' flag).
        num_workers: processes that tokenize and build records while this one writes (0: none).
        max_new_tokens: the evaluation's generation budget; targets longer than it are counted
            (``preprocess.budget``), None: not checked.
        drop_overlong: drop samples longer than seq_length + 1 or with a target over
            ``max_new_tokens`` (listed under ``dropped``, reason "over budget: ...") instead of
            truncating them. A conversation with ``fallback_conversations`` (fastchat turns, e.g.
            the expression-only form of a ``pot_cot`` target, ``preprocess.pipeline``) is trained on
            those instead when they fit (listed under ``shortened``); without ``drop_overlong``
            that happens where the sample would otherwise be truncated.

    Returns:
        dict: ``records``, ``samples`` (conversations written), ``tokens`` (non-pad tokens),
        ``pad_share`` (of the written records), ``pad_share_unpacked`` and ``pad_share_packed``
        (what each mode gives on these samples), ``truncated``/``dropped``/``shortened``/``skipped``/``notes``
        (lists of ``{"where", "id", "reason"}``), ``files``, ``seq_length``, ``template``, ``packing``,
        ``max_new_tokens``, ``drop_overlong``, ``budget`` (``preprocess.budget.summarize``: per category
        prompt/target token median, p90, max and the counts over each budget, measured before any cut,
        and ``fallback``: the samples trained on their ``fallback_conversations``; ``shortened`` entries
        also carry the ``category``).

    Raises:
        ValueError: the template needs special tokens the tokenizer lacks, or nothing to write.
        preprocess.atomic.OutputError: MindRecord's writer failed (full disk, file-size limit); the
            previous output files are left as they were.
    """
    from mindspore.mindrecord import FileWriter

    missing = [t for t in template.special_tokens if tokenizer.special_id(t) is None]
    if missing:
        raise ValueError(f"template {template.name!r} needs special tokens {missing} that the tokenizer lacks")
    total = seq_length + 1
    items = (c if isinstance(c, tuple) else _located("conversations", i, c) for i, c in enumerate(conversations))
    report = {"records": 0, "samples": 0, "tokens": 0, "seq_length": seq_length, "template": template.name,
              "packing": packing, "max_new_tokens": max_new_tokens, "drop_overlong": drop_overlong,
              "truncated": [], "dropped": [], "shortened": [], "skipped": [], "notes": []}
    lengths, packed_records, budget = [], 0, []
    out_dir = os.path.dirname(os.path.abspath(output_file))
    os.makedirs(out_dir, exist_ok=True)
    names = [os.path.basename(f) for f in output_files(output_file, file_partition)]
    # A killed run's work directory is only recognizable as dead now; remove it before adding ours.
    remove_stale_temp_dirs(out_dir, ".mindrecord-")
    tmp_dir = str(make_temp_dir(out_dir, ".mindrecord-"))
    try:
        with _writer_errors(output_file, out_dir):
            writer = FileWriter(os.path.join(tmp_dir, os.path.basename(output_file)), shard_num=file_partition,
                                overwrite=True)
            writer.add_schema(packed_schema(seq_length) if packing else SCHEMA, "qa")

        # Closed on an error too, so the error line starts a line of its own.
        with tqdm(desc="convert", unit="conv", mininterval=5) as progress:
            for entries, ids2d, labels2d, groups, chunk_budget in _converted(
                    items, tokenizer, template, total, packing, num_workers, max_new_tokens, drop_overlong):
                budget += chunk_budget
                for key, entry in entries:
                    report[key].append(entry)
                chunk_lengths = [n for g in groups for n in g]
                lengths += chunk_lengths
                packed_records += len(first_fit_decreasing(chunk_lengths, total, int))
                if len(ids2d):
                    with _writer_errors(output_file, out_dir):
                        writer.write_raw_data([{"input_ids": i, "labels": lab,
                                                **(packed_columns(g, seq_length) if packing else {})}
                                               for i, lab, g in zip(ids2d, labels2d, groups)])
                report["records"] += len(ids2d)
                progress.update(len(chunk_lengths) + sum(key in ("skipped", "dropped") for key, _ in entries))
        report["samples"], report["tokens"] = len(lengths), sum(lengths)
        if not report["records"]:
            raise ValueError(f"no records to write to {output_file}: {len(report['dropped'])} dropped, "
                             f"{len(report['skipped'])} skipped")
        with _writer_errors(output_file, out_dir):
            writer.commit()
        for name in names:
            for suffix in ("", ".db"):
                os.replace(os.path.join(tmp_dir, name + suffix), os.path.join(out_dir, name + suffix))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    capacity = report["records"] * total
    report["pad_share"] = round(1 - report["tokens"] / capacity, 4)
    report["pad_share_unpacked"] = round(1 - report["tokens"] / (len(lengths) * total), 4)
    report["pad_share_packed"] = round(1 - report["tokens"] / (packed_records * total), 4)
    report["files"] = [os.path.join(out_dir, n) for n in names]
    report["budget"] = summarize(budget, seq_length, max_new_tokens,
                                 fallback=[e["category"] for e in report["shortened"]])
    write_json_atomic(output_file + ".report.json", report)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m research.llama3.records.mindrecord", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mf = parser.add_argument_group("MindFormers llama_preprocess.py flags")
    mf.add_argument("--dataset_type", default="qa", choices=["qa"],
                    help="record layout; qa = fastchat conversations (MindFormers' qa mode; wiki is not supported)")
    mf.add_argument("--input_glob", required=True, help="glob of fastchat conversation JSON files (each a JSON list)")
    mf.add_argument("--output_file", required=True,
                    help="output .mindrecord path; a .db index and OUTPUT.report.json are written beside it")
    mf.add_argument("--tokenizer", choices=sorted(TOKENIZER_KINDS), default=None,
                    help="tokenizer kind when no --config is given (default llama3, as in MindFormers)")
    mf.add_argument("--model_file", "--vocab_file", dest="model_file", default=None,
                    help="tokenizer file (Llama 3 tokenizer.model, a Qwen2 vocab.json, or a GGUF); overrides the YAML's path "
                         "(--vocab_file: MindFormers' key for it)")
    mf.add_argument("--seq_length", type=int, required=True, help="model seq_length; records get seq_length+1 ids")
    mf.add_argument("--file_partition", type=int, default=1,
                    help="number of MindRecord shards (files OUTPUT0..N-1 when N > 1)")
    ours = parser.add_argument_group("our options")
    ours.add_argument("--config", default=None,
                      help="MindFormers YAML whose processor.tokenizer names the tokenizer and whose "
                           "model.model_config.pad_token_id gives the pad id")
    ours.add_argument("--template", default=DEFAULT_TEMPLATE, choices=sorted(TEMPLATES),
                      help="chat template (preprocess.templates); use the same one for evaluation")
    ours.add_argument("--packing", action="store_true",
                      help="pack consecutive short samples into one record (next-fit, order kept, within "
                           "blocks of 512 conversations); prompts stay masked; the report gives the padding saved")
    ours.add_argument("--max_new_tokens", type=int, default=None,
                      help="the evaluation's generation budget (eval.math --max_new_tokens): targets longer than "
                           "it are counted per category and warned about (default: not checked)")
    ours.add_argument("--drop_overlong", action="store_true",
                      help="drop samples that do not fit seq_length+1 or --max_new_tokens (counted in the report) "
                           "instead of truncating them")
    ours.add_argument("--num_workers", type=int, default=0,
                      help="tokenizer processes beside the writer (0: tokenize in the writing process)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from research.llama3.tokenizers.tokenizer import build_tokenizer, tokenizer_from_config

    if args.seq_length < 1 or args.file_partition < 1 or args.num_workers < 0:
        parser.error("--seq_length and --file_partition must be >= 1, --num_workers >= 0")
    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        parser.error("--max_new_tokens must be >= 1")
    paths = sorted(glob.glob(args.input_glob))
    if not paths:
        parser.error(f"--input_glob matched no file: {args.input_glob}")
    if args.config:
        if args.tokenizer:
            parser.error("--tokenizer is for runs without --config; the YAML's processor.tokenizer decides")
        try:
            tokenizer = tokenizer_from_config(args.config, args.model_file)
        except (OSError, KeyError, ValueError) as exc:  # ValueError: config_check.ConfigError lists each key
            parser.error(f"--config: {exc}")
    else:
        if not args.model_file:
            parser.error("give --config YAML, or --model_file (with --tokenizer, default llama3)")
        kind = TOKENIZER_KINDS[args.tokenizer or "llama3"]
        tokenizer = build_tokenizer({"type": kind}, args.model_file)
    try:
        report = convert(load_conversations(paths), tokenizer, get_template(args.template), args.seq_length,
                         args.output_file, packing=args.packing, file_partition=args.file_partition,
                         num_workers=args.num_workers, max_new_tokens=args.max_new_tokens,
                         drop_overlong=args.drop_overlong)
    except OutputError as exc:
        print(f"{parser.prog}: error: {exc.strerror}", file=sys.stderr)
        return 1
    except ValueError as exc:
        parser.error(str(exc))  # exits with status 2
    print(render_table(report["budget"], args.seq_length, args.max_new_tokens))
    for line in budget_warnings(report["budget"], args.drop_overlong):
        print(line)
    print(f"wrote {report['records']} records ({report['samples']} samples) to {', '.join(report['files'])}: "
          f"truncated {len(report['truncated'])}, dropped {len(report['dropped'])}, "
          f"shortened to their fallback {len(report['shortened'])}, "
          f"skipped {len(report['skipped'])}; pad share {report['pad_share']:.1%} "
          f"(unpacked {report['pad_share_unpacked']:.1%}, packed {report['pad_share_packed']:.1%}); "
          f"details in {args.output_file}.report.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
