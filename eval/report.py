"""Run report: a training-loss plot and a Markdown ``report.md`` assembled from computed values.

Nothing here computes metrics; callers pass numbers and tables they already have (e.g. from
:func:`eval.math_accuracy.format_table`), so the same writer serves any run.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from eval.files import read_jsonl
from preprocess.atomic import write_text_atomic


def read_loss_log(loss_log: str | os.PathLike) -> tuple[list[int], list[float]]:
    """Return ``(steps, losses)`` from a JSONL log of ``{"step": int, "loss": float, ...}`` lines.

    Lines without both keys (e.g. evaluation or timing records in the same log) and blank lines
    are skipped; so are non-finite losses, which would break the plot's axis scaling.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line that is not JSON, or no usable line at all.
    """
    steps, losses = [], []
    for row in read_jsonl(loss_log):
        if not isinstance(row, dict) or "step" not in row or "loss" not in row:
            continue
        loss = float(row["loss"])
        if math.isfinite(loss):
            steps.append(int(row["step"]))
            losses.append(loss)
    if not steps:
        raise ValueError(f"{loss_log}: no lines with a finite 'loss' and a 'step'")
    return steps, losses


def plot_loss(loss_log: str | os.PathLike, png_path: str | os.PathLike,
              title: str = "Training loss") -> str:
    """Plot loss against step from ``loss_log`` into ``png_path`` (written atomically).

    Uses matplotlib's object API with the Agg canvas rather than ``pyplot``, so it needs no display
    and does not switch the backend of a caller that uses pyplot itself.

    Returns:
        ``str(png_path)``.

    Raises:
        FileNotFoundError / ValueError: see :func:`read_loss_log`.
    """
    from eval.plots import new_axes, save_png

    steps, losses = read_loss_log(loss_log)
    fig, ax = new_axes((7, 4))
    ax.plot(steps, losses, linewidth=1.2, marker="." if len(steps) <= 50 else None)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    return save_png(fig, png_path)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")  # keep a Markdown table cell on one line


def _render(content) -> str:
    """Markdown for one section body (see :func:`write_report`)."""
    if isinstance(content, str):
        return content.rstrip("\n")
    if isinstance(content, Mapping):
        if content and all(isinstance(v, Mapping) for v in content.values()):
            columns: list[str] = []
            for row in content.values():
                columns += [c for c in row if c not in columns]
            lines = ["| | " + " | ".join(_fmt(c) for c in columns) + " |",
                     "|---|" + "---:|" * len(columns)]
            for name, row in content.items():
                lines.append(f"| {_fmt(name)} | " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
            return "\n".join(lines)
        lines = ["| | |", "|---|---|"]
        lines += [f"| {_fmt(k)} | {_fmt(v)} |" for k, v in content.items()]
        return "\n".join(lines)
    if isinstance(content, Sequence):
        return "\n".join(f"- {_fmt(x)}" for x in content)
    return _fmt(content)


def write_report(run_dir: str | os.PathLike, sections: Mapping[str, object],
                 title: str = "Run report") -> str:
    """Write ``run_dir/report.md`` (atomically) and return its path.

    Args:
        run_dir: directory of the run; created if missing.
        sections: heading → body, in the order to print. Typical headings: run configuration,
            data counts, training summary (steps, first/last loss, wall time, tokens/s),
            evaluation before/after, artefacts. A body is rendered by type:

            * ``str``: Markdown inserted as is (e.g. a table from ``format_table``, an image link);
            * mapping of mappings: a table, one row per outer key, columns = union of inner keys
              (e.g. ``{"train": {"raw": 809993, "dedup": 548942}, ...}``);
            * other mapping: a two-column key/value table (floats shown with 6 significant digits);
            * list/tuple: a bullet list (e.g. artefact paths);
            * anything else: its string form.
        title: the document's top heading.
    """
    parts = [f"# {title}"]
    for heading, content in sections.items():
        parts.append(f"## {heading}\n\n{_render(content)}")
    path = Path(run_dir) / "report.md"
    return str(write_text_atomic(path, "\n\n".join(parts) + "\n"))
