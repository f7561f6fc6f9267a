"""Command line: ``python -m preprocess --input FILE [FILE ...] --output-dir DIR [--eval-size N] [--seed S]``."""
from __future__ import annotations

import argparse
import sys

from .pipeline import run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m preprocess",
        description="Validate, deduplicate, classify and verify contest math data, synthesize a "
        "chain of thought for each item, hold out an evaluation set and write fastchat "
        "conversations for MindFormers. Writes items.jsonl, eval.jsonl, conversations.json, "
        "rejected.jsonl, report.json and report.md into the output directory.",
    )
    parser.add_argument(
        "--input", nargs="+", required=True, metavar="FILE",
        help='JSONL input files: {"problem","solution"} per line (contest format) or '
        '{"question","answer"} (GSM8K); read in the order given',
    )
    parser.add_argument(
        "--output-dir", required=True, metavar="DIR",
        help="directory for the output files (created if missing; files are replaced atomically)",
    )
    parser.add_argument(
        "--eval-size", type=int, default=0, metavar="N",
        help="number of verified items to hold out for evaluation, stratified by category (default 0)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S",
        help="seed of the hold-out draw; same inputs and seed give the same split (default 0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        report = run(args.input, args.output_dir, eval_size=args.eval_size, seed=args.seed,
                     progress=not args.no_progress)
    except (FileNotFoundError, IsADirectoryError, ValueError) as exc:
        parser.error(str(exc))  # exits with status 2
    print(report["invariant"])
    print(f"verified {report['verified']} of {report['kept']} kept; train {report['train']}, "
          f"eval {report['eval']}, conversations {report['conversations']}; outputs in {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
