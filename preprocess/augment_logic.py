"""Verified logic augmentation: generated closed-world puzzles kept only where two solvers agree.

``python -m preprocess.augment_logic --n 200 --seed 0 --output DIR`` generates puzzles with
:mod:`preprocess.logic_puzzles`, derives every answer with python-constraint and again with
clingo (:mod:`preprocess.logic_solvers`), and writes to ``DIR`` (each file atomically):
``augmented.jsonl`` (Tianchi format ``{"id", "problem", "questions": [{"question", "options",
"answer"}]}``, readable by ``python -m preprocess --input``), ``dropped.jsonl`` (each dropped
puzzle spec with its ``reason`` and both solvers' answers) and ``counts.json``.

Rules: a puzzle where the solvers give different letters for any question is dropped whole
(``disagreed``: one of the two models of the puzzle is wrong, so none of its answers is trusted);
a question that neither solver can answer with exactly one option (``undetermined``) is left
out; a puzzle left without questions is dropped (``no_questions``).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from .atomic import write_json_atomic, write_jsonl_atomic
from .logic_puzzles import KINDS, generate
from .logic_solvers import asp_answers, csp_answers
from preprocess.cli import Parser, UserError, reported_as, run_main

Solver = Callable[[dict], list]


def verify(specs: Iterable[dict], first: Solver = csp_answers,
           second: Solver = asp_answers) -> tuple[list[dict], list[dict], dict]:
    """Solve every spec with both solvers and keep what they agree on.

    Returns:
        ``(problems, dropped, counts)``: Tianchi problems (questions renumbered ``选择题 k：``);
        dropped specs with ``reason`` ("disagreed" or "no_questions"), ``first`` and ``second``
        (the two answer lists); ``counts`` = ``{"generated", "kept", "disagreed", "no_questions",
        "questions_kept", "questions_undetermined"}``.
    """
    problems, dropped = [], []
    counts = dict.fromkeys(("generated", "kept", "disagreed", "no_questions", "questions_kept",
                            "questions_undetermined"), 0)
    for spec in specs:
        counts["generated"] += 1
        a, b = first(spec), second(spec)
        if a != b:
            counts["disagreed"] += 1
            dropped.append({**spec, "reason": "disagreed", "first": a, "second": b})
            continue
        decided = [(q, letter) for q, letter in zip(spec["questions"], a) if letter is not None]
        questions = [{"question": f"选择题 {k}：\n{q['question']}", "options": q["options"], "answer": letter}
                     for k, (q, letter) in enumerate(decided, 1)]
        counts["questions_undetermined"] += len(spec["questions"]) - len(questions)
        if not questions:
            counts["no_questions"] += 1
            dropped.append({**spec, "reason": "no_questions", "first": a, "second": b})
            continue
        counts["kept"] += 1
        counts["questions_kept"] += len(questions)
        problems.append({"id": spec["id"], "problem": spec["problem"], "questions": questions})
    return problems, dropped, counts


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m preprocess.augment_logic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, required=True, help="puzzles to generate (before verification)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                   help="puzzle families, generated in turn (default: all)")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="directory for augmented.jsonl, dropped.jsonl and counts.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with reported_as(UserError, ValueError):
        specs = generate(args.n, args.seed, tuple(args.kinds))
    problems, dropped, counts = verify(specs)
    out = Path(args.output)
    write_jsonl_atomic(out / "augmented.jsonl", problems)
    write_jsonl_atomic(out / "dropped.jsonl", dropped)
    write_json_atomic(out / "counts.json", counts)
    print(json.dumps(counts, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
