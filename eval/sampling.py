"""Next-token choice from logits in numpy: greedy, or temperature + top-p (nucleus) sampling.

Used by the MindFormers backend on CPU, where MindFormers' own sampler needs ``ArgMaxExt`` /
``TopkExt`` kernels that CPU lacks. The rules follow transformers' ``TemperatureLogitsWarper`` and
``TopPLogitsWarper`` (``generation/logits_process.py``): divide logits by the temperature, keep
the smallest set of most probable tokens whose probability mass reaches ``top_p`` (at least one
token), renormalise and draw.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """Sampling settings. ``temperature`` > 0, ``0 < top_p <= 1``, ``seed`` any int.

    Raises:
        ValueError: out-of-range temperature or top_p.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")


def greedy(logits: np.ndarray) -> np.ndarray:
    """Argmax over the last axis: ``[B, V]`` float → ``[B]`` int64 (first index on ties)."""
    return np.asarray(logits).argmax(axis=-1)


def top_p_probs(logits: np.ndarray, temperature: float, top_p: float) -> np.ndarray:
    """Probabilities ``[B, V]`` (float64, rows sum to 1) after temperature and top-p filtering."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(probs, order, axis=-1)
        # A token is kept when the mass of the tokens ranked above it is still below top_p,
        # so the top token always survives.
        mass_before = np.cumsum(sorted_p, axis=-1) - sorted_p
        # The relative tolerance: cumsum-then-subtract rounds, so 0.5 + 0.3 can come out a hair under
        # 0.8 and keep a token after the mass has already reached top_p (relative, so a tiny top_p
        # still keeps the top token, whose mass before is 0).
        keep_sorted = mass_before < top_p * (1 - 1e-9)
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(axis=-1, keepdims=True)
    return probs


def sample(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> np.ndarray:
    """Draw one token per row of ``logits`` ``[B, V]`` → ``[B]`` int64, using ``rng``."""
    probs = top_p_probs(logits, sampling.temperature, sampling.top_p)
    return np.array([rng.choice(probs.shape[-1], p=row) for row in probs], dtype=np.int64)
