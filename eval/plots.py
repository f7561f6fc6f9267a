"""PNG bar charts of evaluation results (matplotlib object API on the Agg canvas, no display needed)."""
from __future__ import annotations

import io
import os
from collections.abc import Mapping

from preprocess.atomic import write_atomic


def new_axes(figsize: tuple[float, float]):
    """A ``(figure, axes)`` pair on the Agg canvas (object API, not ``pyplot``: no display needed,
    and a caller's pyplot backend is left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def save_png(fig, png_path: str | os.PathLike) -> str:
    """Lay out ``fig`` and write it as PNG to ``png_path`` atomically; return ``str(png_path)``."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return str(write_atomic(png_path, lambda fh: fh.write(buf.getvalue()), binary=True))


def plot_bars(groups: Mapping[str, Mapping[str, float]], png_path: str | os.PathLike,
              title: str, ylabel: str, ylim: tuple[float, float] | None = None) -> str:
    """Grouped bar chart: one group of bars per x label, one colour per series.

    Args:
        groups: ``{series name: {x label: value}}`` (e.g. ``{"before": {...}, "after": {...}}``);
            x labels are the union in first-seen order, a missing value draws no bar.
        png_path: output file, written atomically.
        ylim: fixed y range, e.g. ``(0, 100)`` for percentages.

    Returns:
        ``str(png_path)``.
    """
    labels: list[str] = []
    for series in groups.values():
        labels += [x for x in series if x not in labels]
    fig, ax = new_axes((max(6.0, 0.6 * len(labels) * max(1, len(groups)) + 2), 4.5))
    width = 0.8 / max(1, len(groups))
    for k, (name, series) in enumerate(groups.items()):
        xs = [i + (k - (len(groups) - 1) / 2) * width for i, x in enumerate(labels) if x in series]
        ax.bar(xs, [series[x] for x in labels if x in series], width=width, label=name)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    if len(groups) > 1:
        ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    return save_png(fig, png_path)


def accuracy_by_category(metrics: Mapping) -> dict[str, float]:
    """``{category: accuracy %, ..., "overall": accuracy %}`` from an ``eval.math`` metrics dict."""
    row = {name: 100.0 * b["accuracy"] for name, b in metrics["categories"].items()}
    row["overall"] = 100.0 * metrics["overall"]["accuracy"]
    return row
