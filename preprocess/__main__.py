"""Command line: ``python -m preprocess --input FILE [FILE ...] --output_dir DIR [--config YAML] [options]``."""
from __future__ import annotations

import argparse
import sys

from .atomic import OutputError
from .config import PreprocessConfig, load_config
from .logic import STYLES
from .pipeline import NoRecordsError, run
from .readers import FORMATS
from .styles import COT_STYLES, TARGET_STYLES
from .teacher import TeacherError
from preprocess.cli import Parser


def build_parser() -> argparse.ArgumentParser:
    # Options default to None so that only those given override --config; the defaults shown are
    # PreprocessConfig's.
    d = PreprocessConfig()
    parser = Parser(
        prog="python -m preprocess",
        description="Validate, classify, deduplicate (exact and near) and verify math/logic training "
        "data, synthesize a chain of thought for each item, hold out an evaluation set, drop items "
        "found in evaluation files, apply per-category quotas and write fastchat conversations for "
        "MindFormers. Writes items.jsonl, eval.jsonl, conversations.json, rejected.jsonl, report.json "
        "and report.md into the output directory. Options given here override the --config file.",
    )
    parser.add_argument(
        "--input", nargs="+", required=True, metavar="FILE",
        help="input files, JSONL or a JSON array, read in the order given; formats: contest "
        '{"problem","solution"}, tianchi {"id","problem","questions"}, gsm8k {"question","answer"}, '
        'alpaca {"instruction","input","output"}, fastchat {"conversations"}',
    )
    parser.add_argument(
        "--output_dir", required=True, metavar="DIR",
        help="directory for the output files (created if missing; files are replaced atomically)",
    )
    parser.add_argument(
        "--config", metavar="YAML",
        help="settings file: quotas, rounding, near_duplicates, contamination, logic_style, teacher, ... "
        "(see configs/preprocess/quotas_example.yaml and docs/preprocess.md)",
    )
    parser.add_argument(
        "--format", choices=["auto", *FORMATS],
        help=f"input format of every record (default {d.format}: detected per record from its keys)",
    )
    parser.add_argument(
        "--eval_size", type=int, metavar="N",
        help="number of verified items to hold out for evaluation, stratified by category, logic problems "
        f"whole (default {d.eval_size})",
    )
    parser.add_argument(
        "--seed", type=int, metavar="S",
        help=f"seed of the hold-out and quota draws; same inputs and seed give the same outputs (default {d.seed})",
    )
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help=f"processes for classify and verify (default {d.workers}: one per available CPU core)",
    )
    parser.add_argument(
        "--contamination", nargs="+", metavar="FILE",
        help="evaluation files (any input format); training items whose normalized problem occurs "
        "in them (or, for logic items, whose context does) are left out of conversations.json (default: none)",
    )
    parser.add_argument(
        "--logic_style", choices=STYLES,
        help="prompt style of logic sub-questions: plain, or thinking (<thinking>/<reflection>/<output>) "
        f"(default {d.logic_style})",
    )
    parser.add_argument(
        "--target_style", choices=TARGET_STYLES,
        help="training target of the contest's computational items: cot (step-by-step text), pot "
        "(a line restating the computation and an expression '算式：...', preprocess/answer/pot.py) or pot_cot "
        f"(the expression, then the steps computing it; the expression alone when over budget) (default {d.target_style})",
    )
    parser.add_argument(
        "--cot_style", choices=COT_STYLES,
        help="which step-by-step text target_style cot and pot_cot train on: steps (every line one small "
        "operation, re-checked; preprocess.recipes), digits (steps with digit-spaced addition/subtraction "
        "and 2-decimal quotients/roots; preprocess.recipes.digits) or classic (the short Chinese explanation) "
        f"(default {d.cot_style})",
    )
    parser.add_argument("--no_progress", action="store_true", help="do not show the progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config).with_overrides(
            format=args.format, workers=args.workers, contamination=args.contamination,
            logic_style=args.logic_style, target_style=args.target_style, cot_style=args.cot_style)
        report = run(args.input, args.output_dir, eval_size=args.eval_size, seed=args.seed,
                     progress=not args.no_progress, config=config)
    except OutputError as exc:
        print(f"{parser.prog}: error: {exc.strerror}", file=sys.stderr)
        return 1
    except NoRecordsError as exc:  # bad data, not bad usage: no usage text
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, IsADirectoryError, ValueError) as exc:
        parser.error(str(exc))  # exits with status 2
    except TeacherError as exc:  # a rejected key or unknown model: the replies so far stay cached
        print(f"error: teacher: {exc}", file=sys.stderr)
        return 1
    print(report["invariant"])
    print(f"verified {report['verified']} of {report['kept']} kept; train {report['train']}, "
          f"eval {report['eval']}, contaminated {report['contaminated']}, conversations "
          f"{report['conversations']}; outputs in {args.output_dir}")
    if report["teacher"]:
        t = report["teacher"]
        print(f"teacher: {t['matched']} matched, {t['rationale']} from the given answer, {t['failed']} failed, "
              f"{t['errors']} request errors; {t['requests']} requests sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
