"""Merge the per-rank checkpoints of a data-parallel run into one checkpoint file.

Usage: ``python -m research.llama3.checkpoint.merge_ranks --checkpoint_dir OUTPUT/checkpoint_trainable --output lora.ckpt``

MindFormers' ``CheckpointMonitor`` writes one file per rank (``<dir>/rank_<N>/<prefix>_rank_<N>-<epoch>_<step>.ckpt``).
Under data parallelism (``model_parallel: 1``, ``pipeline_stage: 1``, as in the shipped 4p/8p configs)
every rank holds the whole tensors and, the gradients being all-reduced, the same values: merging is
checking that the ranks agree and writing one copy. A disagreement means the ranks diverged and is an
error. Tensors sliced by model or pipeline parallelism (different shapes per rank) need the parallel
strategy file to be put back together, which is MindSpore's ``mindspore.transform_checkpoints`` (or
MindFormers' ``auto_trans_ckpt``); this tool refuses them with that pointer rather than guess a layout.
"""
import argparse
import glob
import os
import re
import sys

import numpy as np
from preprocess.cli import Parser


def newest_per_rank(checkpoint_dir: str) -> dict[int, str]:
    """``{rank: newest .ckpt}`` for each ``rank_<N>/`` under ``checkpoint_dir``.

    Raises:
        FileNotFoundError: no ``rank_<N>/`` with a ``.ckpt`` file.
        ValueError: the ranks' newest files are of different steps (``-<epoch>_<step>.ckpt`` differ).
    """
    found = {}
    for rank_dir in glob.glob(os.path.join(checkpoint_dir, "rank_*")):
        match = re.fullmatch(r"rank_(\d+)", os.path.basename(rank_dir))
        files = glob.glob(os.path.join(rank_dir, "*.ckpt"))
        if match and files:
            found[int(match.group(1))] = max(files, key=os.path.getmtime)
    if not found:
        raise FileNotFoundError(f"no rank_<N>/*.ckpt under {checkpoint_dir}")
    steps = {rank: re.sub(r"^.*?(-\d+_\d+)?\.ckpt$", r"\1", os.path.basename(path)) for rank, path in found.items()}
    if len(set(steps.values())) > 1:
        raise ValueError(f"{checkpoint_dir}: the ranks' newest checkpoints are of different steps: {steps}")
    return dict(sorted(found.items()))


def merge_replicated(paths: dict[int, str], atol: float = 0.0) -> dict:
    """Check that every rank's checkpoint holds the same tensors (within ``atol``); return rank 0's.

    Args:
        paths: ``{rank: checkpoint}`` (from :func:`newest_per_rank`).
        atol: largest absolute difference accepted between ranks (0: bit-identical, what all-reduced
            data parallelism gives).

    Returns:
        ``{name: mindspore.Parameter}`` of the lowest rank.

    Raises:
        ValueError: a name missing on some rank, a shape that differs (sliced tensor: use
            ``mindspore.transform_checkpoints`` with the strategy file), or values that differ.
    """
    import mindspore as ms

    loaded = {rank: ms.load_checkpoint(path) for rank, path in paths.items()}
    first_rank, first = next(iter(loaded.items()))
    for rank, params in loaded.items():
        if params.keys() != first.keys():
            raise ValueError(f"{paths[rank]}: parameter names differ from rank {first_rank}: "
                             f"{sorted(params.keys() ^ first.keys())[:5]}")
        for name, value in params.items():
            a, b = first[name].asnumpy(), value.asnumpy()
            if a.shape != b.shape:
                raise ValueError(f"{paths[rank]}: {name} has shape {b.shape}, rank {first_rank} {a.shape}: sliced "
                                 f"by model/pipeline parallelism; merge with mindspore.transform_checkpoints and "
                                 f"the run's strategy file")
            diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
            if diff > atol:
                raise ValueError(f"{paths[rank]}: {name} differs from rank {first_rank} by {diff:g} (> {atol:g}); "
                                 f"the ranks diverged")
    return first


def main(argv=None) -> int:
    parser = Parser(prog="python -m research.llama3.checkpoint.merge_ranks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint_dir", required=True,
                        help="directory holding rank_<N>/ (e.g. OUTPUT/checkpoint_trainable or OUTPUT/checkpoint)")
    parser.add_argument("--output", required=True, help="merged checkpoint to write")
    parser.add_argument("--atol", type=float, default=0.0, help="largest difference accepted between ranks")
    args = parser.parse_args(argv)
    import mindspore as ms

    paths = newest_per_rank(args.checkpoint_dir)
    params = merge_replicated(paths, args.atol)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    # save_checkpoint writes <name>.tmp and renames it: the output is never half-written.
    ms.save_checkpoint([{"name": k, "data": v} for k, v in params.items()], args.output)
    print(f"merged {len(paths)} ranks ({', '.join(os.path.basename(p) for p in paths.values())}): "
          f"{len(params)} tensors -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
