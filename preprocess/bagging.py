"""Bagging: N seeded random subsets of the training conversations, one adapter trained on each.

The Tianchi logic write-ups trained N LoRA adapters, each on a random 80% of the data, and voted
across them (21 voters did best); ``eval.logic --lora_checkpoint A B C`` pools the adapters'
votes. This module draws the subsets; each becomes its own run directory, trained as usual::

    python -m preprocess.bagging --input RUN/data/conversations.json --n 3 --fraction 0.8 \\
        --seed 0 --output_dir RUN/bags

writes ``RUN/bags/bag_00/conversations.json`` ... ``bag_02/``, each with ``bag.json`` (its seed,
fraction, size and conversation ids), and ``RUN/bags/bags.json`` (the list of bag directories),
written last so a complete manifest means complete bags.

Draw rule: the unit is a training item, so an item upsampled by quotas (ids ``ID``, ``ID#2``, ...)
is in a bag with all its copies or not at all. Bag ``k`` holds ``round(fraction x units)`` units
(at least 1) drawn without replacement by ``random.Random("bag-{seed}-{k}")``, in input order.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from .atomic import write_json_array_atomic, write_json_atomic
from preprocess.cli import Parser, UserError, reported_as, run_main


def _unit(conversation_id: str) -> str:
    return str(conversation_id).split("#", 1)[0]


def bag_indices(ids: list[str], n_bags: int, fraction: float = 0.8, seed: int = 0) -> list[list[int]]:
    """Indices into ``ids`` (conversation ids) of each bag, ascending; see the module docstring.

    Raises:
        ValueError: ``n_bags`` < 1, ``fraction`` outside (0, 1], or no ids.
    """
    if n_bags < 1:
        raise ValueError(f"n must be >= 1 (got {n_bags})")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1] (got {fraction})")
    units: dict[str, list[int]] = {}
    for i, cid in enumerate(ids):
        units.setdefault(_unit(cid), []).append(i)
    if not units:
        raise ValueError("no conversations to draw bags from")
    size = max(1, round(fraction * len(units)))
    names = list(units)
    bags = []
    for k in range(n_bags):
        chosen = random.Random(f"bag-{seed}-{k}").sample(names, size)
        bags.append(sorted(i for name in chosen for i in units[name]))
    return bags


def write_bags(input_file: str | Path, n_bags: int, output_dir: str | Path, fraction: float = 0.8,
               seed: int = 0) -> list[Path]:
    """Write the bags of a fastchat ``conversations.json`` (list of ``{"id", "conversations"}``);
    return the bag directories.

    Raises:
        ValueError: not a JSON list of objects with ``id``, or see :func:`bag_indices`; the message
            names the file (and the entry's 1-based number).
    """
    path = Path(input_file)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of fastchat conversations")
    for n, rec in enumerate(records, 1):
        if not isinstance(rec, dict) or "id" not in rec:
            raise ValueError(f"{path}: entry {n} has no field 'id'")
    ids = [str(r["id"]) for r in records]
    try:
        bags = bag_indices(ids, n_bags, fraction, seed)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    out = Path(output_dir)
    dirs = []
    for k, indices in enumerate(bags):
        bag_dir = out / f"bag_{k:02d}"
        write_json_array_atomic(bag_dir / "conversations.json", [records[i] for i in indices])
        write_json_atomic(bag_dir / "bag.json", {"bag": k, "seed": seed, "fraction": fraction,
                                                  "source": str(path), "conversations": len(indices),
                                                  "of": len(records), "ids": [ids[i] for i in indices]})
        dirs.append(bag_dir)
    write_json_atomic(out / "bags.json", {"source": str(path), "n": n_bags, "fraction": fraction, "seed": seed,
                                          "bags": [d.name for d in dirs]})
    return dirs


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m preprocess.bagging", description=__doc__,
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="fastchat conversations.json (preprocess output)")
    p.add_argument("--n", type=int, required=True, help="number of bags (adapters to train)")
    p.add_argument("--fraction", type=float, default=0.8, help="share of the items in each bag (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default: %(default)s)")
    p.add_argument("--output_dir", required=True, help="directory for bag_NN/ and bags.json")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with reported_as(UserError, OSError, ValueError):
        dirs = write_bags(args.input, args.n, args.output_dir, args.fraction, args.seed)
    for d in dirs:
        print(d)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
