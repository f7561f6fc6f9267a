"""End-to-end preprocessing: read -> validate -> classify -> dedup -> verify + CoT -> split ->
contamination check (problems, and logic contexts) -> quotas -> write.

Outputs in ``output_dir``, replaced together (``preprocess.atomic.write_set_atomic``: staged in a
hidden directory, then committed; a kill or a full disk leaves the previous set whole):
    items.jsonl         one record per kept item:
                        {id, source, category, problem, solution, answer, cot, verified}
                        (+ ``fallback``: the expression-only target under ``pot_cot``)
                        (+ ``logic``: {problem_id, question_index, ...} for Tianchi records)
    eval.jsonl          the held-out items, same fields
    conversations.json  fastchat records of the sampled verified training items, the input of
                        MindFormers r1.1 ``research/llama3/llama_preprocess.py`` (qa mode):
                        [{"id", "category", "conversations": [{"from": "human", "value": problem},
                                                              {"from": "gpt", "value": cot}]}]
                        (``category`` is extra to fastchat; ``research.llama3.records.mindrecord`` reports token
                        budgets by it; ``target_style: pot_cot`` records also carry
                        ``fallback_conversations``, the expression-only form mindrecord trains on
                        when the whole target is over budget)
                        (an item upsampled K times appears K times, ids ``ID``, ``ID#2``, ...)
    rejected.jsonl      bad input lines {kind: "invalid_line", file, line, reason} and
                        verification failures {kind: "verify_failed", id, file, line,
                        category, reason}; both with ``element`` (0-based index) for an
                        element of a JSON array file, whose id is ``STEM[element]``
    report.json         counts (see :func:`run`)
    report.md           the same counts as markdown tables

Counting invariant: every record read (a non-blank line; a Tianchi line gives one record per
sub-question) ends up kept, dropped as a duplicate (exact or near), or rejected, so
``read = kept + duplicates + rejected`` with ``duplicates = exact_duplicates + near_duplicates``. Verification failures stay among the
kept items (flagged ``verified: false``); they are excluded from ``conversations.json`` and
never held out, because an item whose reference answer could not be confirmed cannot score a
model.

Classification, normalization and verification run in ``workers`` forked processes over
contiguous chunks; results are put back in input order, so the outputs do not depend on the
number of workers.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from .atomic import (prepare_set_dir, write_json_array_atomic, write_json_atomic, write_jsonl_atomic,
                     write_set_atomic, write_text_atomic)
from .classify import CATEGORIES, classify
from .config import PreprocessConfig
from .cot import synthesize
from .dedup import first_occurrences, near_dedup, normalize, signature
from .logic import assistant_message, user_message
from .pot_targets import POT_CATEGORIES
from .readers import parse_unit, read_records, read_units
from .rounding import apply_rounding
from .quotas import apply_quotas, contamination_keys, context_key, context_keys
from .split import split_holdout
from .styles import COT_STYLE, TARGET_STYLE

# Tag of the output set's hidden staging / commit directories (``.preprocess-commit``).
OUTPUT_SET = "preprocess"
ITEM_FIELDS = ("id", "source", "category", "problem", "solution", "answer", "cot", "verified")
# Below this many records the cost of starting processes exceeds what they save.
_PARALLEL_MIN = 20000
_CHUNK = 4000


def _id_prefixes(inputs: list[str]) -> dict[str, str]:
    """Map each input path to an id prefix: its file stem, made unique across inputs."""
    stems = Counter(Path(p).stem for p in inputs)
    prefixes: dict[str, str] = {}
    for i, p in enumerate(inputs):
        stem = Path(p).stem
        prefixes.setdefault(p, stem if stems[stem] == 1 else f"{stem}~{i}")
    return prefixes


# --------------------------------------------------------------------------- parallel map

_SHARED: Sequence = ()
_FUNC: Callable | None = None


def _run_chunk(bounds: tuple[int, int]) -> list:
    start, end = bounds
    return [_FUNC(x) for x in _SHARED[start:end]]


def parallel_map(func: Callable, data: Sequence, workers: int, desc: str, progress: bool) -> list:
    """``[func(x) for x in data]`` over ``workers`` forked processes (1: in this process).

    ``data`` and ``func`` reach the children through fork, so only the results are pickled.
    """
    global _SHARED, _FUNC
    bar = tqdm(total=len(data), desc=desc, unit="item", disable=not progress, file=sys.stderr,
               mininterval=0.5)
    out: list = []
    with bar:
        if workers <= 1 or len(data) < _PARALLEL_MIN:
            for start in range(0, len(data), _CHUNK):
                out.extend(func(x) for x in data[start:start + _CHUNK])
                bar.update(min(_CHUNK, len(data) - start))
            return out
        _SHARED, _FUNC = data, func
        try:
            bounds = [(i, min(i + _CHUNK, len(data))) for i in range(0, len(data), _CHUNK)]
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for part in pool.imap(_run_chunk, bounds):
                    out.extend(part)
                    bar.update(len(part))
        finally:
            _SHARED, _FUNC = (), None
    return out


def _default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --------------------------------------------------------------------------- per-record work


def _ingest(unit: tuple, fmt: str) -> tuple[list[tuple[dict, str, str]], dict | None]:
    """Parse one input unit; each good record comes with its dedup key and category."""
    records, bad = parse_unit(unit, fmt)
    out = []
    for rec in records:
        category = "logic" if rec["format"] == "tianchi" else classify(rec["problem"], rec["solution"])
        out.append((rec, normalize(rec["problem"]), category))
    return out, bad


def _verify(job: tuple[str, str, str, bool], style: str) -> tuple[str, str, bool, str]:
    problem, solution, category, unanswered = job
    if unanswered:
        return solution, "", False, "no reference answer given (test-set question)"
    r = synthesize(problem, solution, category, style)
    return r.cot, r.answer, r.verified, r.reason


# --------------------------------------------------------------------------- the run


def run(
    inputs: list[str],
    output_dir: str | os.PathLike,
    eval_size: int | None = None,
    seed: int | None = None,
    *,
    progress: bool = True,
    config: PreprocessConfig | None = None,
) -> dict:
    """Run the whole pipeline and write its outputs into ``output_dir`` (created if needed).

    Args:
        inputs: files in any reader format (``preprocess.readers``), read in the order given.
        output_dir: directory for the six output files.
        eval_size: verified items to hold out, stratified by category; overrides ``config``.
        seed: seed of the hold-out and quota draws; overrides ``config``.
        progress: show tqdm bars (on stderr).
        config: all other settings (``preprocess.config``); None gives the defaults.

    Returns:
        The report dict written to report.json: ``read, rejected, duplicates (exact + near),
        exact_duplicates, near_duplicates, kept, verified, verify_failed, train, eval,
        contaminated, conversations`` (ints),
        ``invariant`` (str), ``per_category`` ({category: {read, duplicates, near_duplicates,
        kept, verified, train, eval, conversations}}, categories in ``CATEGORIES`` order, only
        those present; a duplicate counts in the category of the item it duplicates, and
        ``read = kept + duplicates`` per category), ``teacher`` (``preprocess.teacher.summarize``:
        {matched, rationale, failed, errors, requests}, or None), plus ``inputs``, ``eval_size``, ``seed``, ``settings``.

    Raises:
        FileNotFoundError: an input or contamination file does not exist.
        NoRecordsError (a ValueError): the inputs gave no record (empty, or every line rejected); the
            outputs, rejected.jsonl among them, are written first.
        ValueError: bad settings, or ``eval_size`` exceeds the number of verified items.
        preprocess.atomic.OutputError: the outputs cannot be written (full disk, permissions); the
            previous outputs in ``output_dir`` are left whole.
    """
    cfg = (config or PreprocessConfig()).with_overrides(eval_size=eval_size, seed=seed)
    # The run builds millions of long-lived, acyclic objects; the cyclic collector would re-scan
    # them again and again and free nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(inputs, output_dir, cfg, progress)
    finally:
        if was_enabled:
            gc.enable()


def _run(inputs: list, output_dir: str | os.PathLike, cfg: PreprocessConfig, progress: bool) -> dict:
    inputs = [str(p) for p in inputs]
    out = prepare_set_dir(output_dir, OUTPUT_SET)  # an unwritable output dir fails now, not in an hour
    workers = cfg.workers or _default_workers()
    contamination = read_records(cfg.contamination)[0]
    contaminated_keys = contamination_keys(r["problem"] for r in contamination)
    contaminated_contexts = context_keys(contamination)

    good: list[dict] = []
    keyed: list[tuple[str, str]] = []
    bad_lines: list[dict] = []
    for records, bad in parallel_map(partial(_ingest, fmt=cfg.format), read_units(inputs), workers,
                                     "read+classify", progress):
        for rec, key, category in records:
            good.append(rec)
            keyed.append((key, category))
        if bad:
            bad_lines.append(bad)

    # Exact dedup: the first occurrence of each normalized problem, in input order.
    # A duplicate counts in its kept original's category: a reformatted copy may not classify.
    marks = first_occurrences(key for key, _ in keyed)
    kept_idx = [i for i, m in enumerate(marks) if m is None]
    dup_per = Counter(keyed[m][1] for m in marks if m is not None)
    near_per: Counter = Counter()
    if cfg.near_dup_threshold is not None:
        free = [i for i in kept_idx if keyed[i][1] in cfg.near_dup_categories]
        texts = [good[i]["problem"] for i in free]
        sigs = parallel_map(signature, texts, workers, "minhash", progress and bool(texts))
        marks = near_dedup(texts, cfg.near_dup_threshold, signatures=sigs)
        dropped = {i for i, m in zip(free, marks) if m is not None}
        near_per.update(keyed[free[m]][1] for m in marks if m is not None)
        kept_idx = [i for i in kept_idx if i not in dropped]

    jobs = [(good[i]["problem"], good[i]["solution"], keyed[i][1],
             good[i]["format"] == "tianchi" and not good[i]["solution"]) for i in kept_idx]
    if workers > 1 and len(jobs) >= _PARALLEL_MIN:
        import sympy  # noqa: F401  imported once before the fork instead of once per child (~1 s each)
    results = parallel_map(partial(_verify, style=cfg.cot_style), jobs, workers, "verify", progress)

    prefixes = _id_prefixes(inputs)
    target = TARGET_STYLE[cfg.target_style]
    keys: dict[str, str] = {}
    items: list[dict] = []
    failures: list[dict] = []
    for i, (cot, answer, verified, reason) in zip(kept_idx, results):
        rec, category = good[i], keyed[i][1]
        suffix = f".q{rec['logic']['question_index'] + 1}" if "logic" in rec else ""
        # A JSON array element is named by its index: a minified array holds many on one line.
        place = f"-{rec['line']}" if rec.get("element") is None else f"[{rec['element']}]"
        item = {
            "id": f"{prefixes[rec['file']]}{place}{suffix}",
            "source": rec["file"],
            "category": category,
            "problem": rec["problem"],
            "solution": rec["solution"],
            "answer": answer,
            "cot": cot,
            "verified": verified,
        }
        keys[item["id"]] = keyed[i][0]
        if verified and category in cfg.rounding:
            item["cot"], _ = apply_rounding(cot, answer, cfg.rounding[category],
                                            approximate=COT_STYLE[cfg.cot_style].claims)
        if verified and target.pot is not None and category in POT_CATEGORIES:
            try:
                pot = target.pot(rec["problem"], answer, category)
            except ValueError as exc:
                item.update(cot=rec["solution"], verified=False)
                verified, reason = False, f"PoT target: {exc}"
            else:
                item["cot"], fallback = target.compose(pot, item["cot"])
                if fallback is not None:
                    item["fallback"] = fallback
        if "logic" in rec:
            item["logic"] = rec["logic"]
        items.append(item)
        if not verified:
            failures.append({"kind": "verify_failed", "id": item["id"], "file": rec["file"], "line": rec["line"],
                             **({"element": rec["element"]} if "element" in rec else {}),
                             "category": category, "reason": reason})

    verified_items = [it for it in items if it["verified"]]
    # With no record at all the run fails after writing rejected.jsonl (below), naming the cause
    # rather than an eval_size that no longer fits.
    if items and cfg.eval_size > len(verified_items):
        raise ValueError(
            f"eval_size {cfg.eval_size} exceeds the {len(verified_items)} verified items available"
        )
    teacher_counts = _style_logic(items, cfg, out, progress)
    _, held = split_holdout(verified_items, cfg.eval_size if items else 0, cfg.seed)
    held_ids = {it["id"] for it in held}
    train = [it for it in items if it["id"] not in held_ids]
    candidates = [it for it in train if it["verified"]]
    # The key of a logic item is that of its plain-style message, whatever style it trains in. Held-out
    # contexts count too: two problem ids can carry the same context (2 of 500 in Tianchi round 1).
    contexts = contaminated_contexts | context_keys(held)
    clean = [it for it in candidates
             if keys[it["id"]] not in contaminated_keys and context_key(it) not in contexts]
    sampled = apply_quotas(clean, cfg.quotas, cfg.seed)
    conversations = []
    copies: Counter = Counter()
    for it in sampled:
        copies[it["id"]] += 1
        n = copies[it["id"]]
        conversations.append({"id": it["id"] if n == 1 else f"{it['id']}#{n}", "category": it["category"],
                              "conversations": [{"from": "human", "value": it["problem"]},
                                                {"from": "gpt", "value": it["cot"]}]})
        if "fallback" in it:
            conversations[-1]["fallback_conversations"] = [{"from": "human", "value": it["problem"]},
                                                           {"from": "gpt", "value": it["fallback"]}]

    report = _report(inputs, cfg, keyed, bad_lines, dup_per, near_per, items, train, held,
                     len(candidates) - len(clean), sampled, teacher_counts)
    rejected = [{"kind": "invalid_line", **b} for b in bad_lines] + failures
    write_set_atomic(out, {
        "items.jsonl": lambda path: write_jsonl_atomic(path, items),
        "eval.jsonl": lambda path: write_jsonl_atomic(path, held),
        "conversations.json": lambda path: write_json_array_atomic(path, conversations),
        "rejected.jsonl": lambda path: write_jsonl_atomic(path, rejected),
        "report.json": lambda path: write_json_atomic(path, report),
        "report.md": lambda path: write_text_atomic(path, render_markdown(report)),
    }, tag=OUTPUT_SET)
    if not items:
        raise NoRecordsError(_no_records_reason(inputs, bad_lines, out / "rejected.jsonl"))
    return report


class NoRecordsError(ValueError):
    """No input line gave a record (empty files, or every line rejected); the outputs were written."""


def _no_records_reason(inputs: list[str], bad_lines: list[dict], rejected_path: Path) -> str:
    files = ", ".join(inputs)
    if not bad_lines:
        return f"no records read from {files} (empty or blank)"
    first = bad_lines[0]
    reason = f"{first['file']}:{first['line']}: {first['reason']}"
    if "UTF-8" in first["reason"]:
        reason += "; convert the file, e.g. iconv -f GB18030 -t UTF-8"
    lines = f"all {len(bad_lines)} lines" if len(bad_lines) > 1 else "the only line"
    return f"{lines} of {files} rejected (first: {reason}), see {rejected_path}"


def _style_logic(items: list[dict], cfg: PreprocessConfig, out: Path, progress: bool) -> dict | None:
    """Render verified logic items in ``cfg.logic_style``, with teacher rationales when configured.

    Returns the teacher counts (``teacher.summarize``), or None without a teacher. Sub-questions
    whose requests failed get the rationale-free target this run; a rerun continues them from
    the reply cache.
    """
    logic = [it for it in items if "logic" in it and it["verified"]]
    rationales = [""] * len(logic)
    counts = None
    if cfg.teacher and logic:
        from .teacher import TeacherClient, summarize

        t = dict(cfg.teacher)
        key_env = t.pop("api_key_env", None)
        client = TeacherClient(t.pop("base_url"), t.pop("model"), t.pop("cache_dir", out / "teacher_cache"),
                               api_key=os.environ.get(key_env) if key_env else None, **t)
        results = client.solve_all([(it["logic"], it["answer"]) for it in logic], progress=progress)
        rationales = [r.rationale for r in results]
        counts = summarize(results)
        if counts["errors"]:
            first = next(r.reason for r in results if r.error)
            print(f"warning: teacher requests failed for {counts['errors']} sub-questions (first: {first}); "
                  "rerun to continue them from the reply cache", file=sys.stderr)
    for it, rationale in zip(logic, rationales):
        it["problem"] = user_message(it["logic"], cfg.logic_style)
        it["cot"] = assistant_message(it["logic"], it["answer"], cfg.logic_style, rationale)
    return counts


def _report(inputs, cfg, keyed, bad_lines, dup_per, near_per, items, train, held, contaminated,
            sampled, teacher_counts) -> dict:
    read = len(keyed) + len(bad_lines)
    kept, rejected = len(items), len(bad_lines)
    exact, near = sum(dup_per.values()), sum(near_per.values())
    dups = exact + near
    if read != kept + dups + rejected:
        # Cannot happen unless a stage loses or invents records; refuse to write a wrong report.
        raise RuntimeError(f"count invariant broken: read {read} != {kept} + {dups} + {rejected}")
    counts = {
        "kept": Counter(it["category"] for it in items),
        "duplicates": dup_per + near_per,
        "near_duplicates": near_per,
        "verified": Counter(it["category"] for it in items if it["verified"]),
        "train": Counter(it["category"] for it in train),
        "eval": Counter(it["category"] for it in held),
        "conversations": Counter(it["category"] for it in sampled),
    }
    counts = {"read": counts["kept"] + counts["duplicates"], **counts}
    present = set(counts["read"])
    per = {c: {name: counts[name][c] for name in counts} for c in present}
    verified = sum(it["verified"] for it in items)
    return {
        "inputs": inputs,
        "eval_size": cfg.eval_size,
        "seed": cfg.seed,
        "read": read,
        "rejected": rejected,
        "duplicates": dups,
        "exact_duplicates": exact,
        "near_duplicates": near,
        "kept": kept,
        "verified": verified,
        "verify_failed": kept - verified,
        "train": len(train),
        "eval": len(held),
        "contaminated": contaminated,
        "conversations": len(sampled),
        "invariant": f"read = kept + duplicates + rejected: {read} = {kept} + {dups} + {rejected}",
        "per_category": {c: per[c] for c in CATEGORIES if c in per},
        "teacher": teacher_counts,
        "settings": {
            "format": cfg.format,
            "near_dup_threshold": cfg.near_dup_threshold,
            "near_dup_categories": list(cfg.near_dup_categories),
            "rounding": cfg.rounding,
            "quotas": {c: vars(q) for c, q in cfg.quotas.items()},
            "contamination": list(cfg.contamination),
            "logic_style": cfg.logic_style,
            "target_style": cfg.target_style,
            "cot_style": cfg.cot_style,
        },
    }


def render_markdown(report: dict) -> str:
    """Render ``report`` (as returned by :func:`run`) as a markdown summary with a per-category table."""
    lines = [
        "# Preprocessing report",
        "",
        f"Inputs: {', '.join(f'`{p}`' for p in report['inputs'])}",
        "",
        "| stage | count |",
        "|---|---:|",
    ]
    for key in ("read", "rejected", "duplicates", "exact_duplicates", "near_duplicates", "kept", "verified",
                "verify_failed", "train", "eval", "contaminated", "conversations"):
        lines.append(f"| {key} | {report[key]} |")
    lines += [
        "",
        f"Invariant holds: {report['invariant']}",
        "",
        "| category | read | duplicates | near_duplicates | kept | verified | train | eval | conversations |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cols = ("read", "duplicates", "near_duplicates", "kept", "verified", "train", "eval", "conversations")
    for cat, c in report["per_category"].items():
        lines.append(f"| {cat} | " + " | ".join(str(c[k]) for k in cols) + " |")
    total_read = report["read"] - report["rejected"]
    lines.append(
        f"| **total** | {total_read} | {report['duplicates']} | {report['near_duplicates']} | "
        f"{report['kept']} | {report['verified']} | {report['train']} | {report['eval']} | "
        f"{report['conversations']} |"
    )
    if report.get("teacher"):
        t = report["teacher"]
        lines += ["", f"Teacher rationales: {t['matched']} matched, {t['rationale']} from the given answer, "
                      f"{t['failed']} failed, {t['errors']} request errors (a rerun continues them); "
                      f"{t['requests']} requests sent (the rest came from the reply cache)"]
    return "\n".join(lines) + "\n"
