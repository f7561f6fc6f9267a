"""Training-target recipes for the contest's computational categories (the styles: ``preprocess.styles``).

``classic``: the re-derivation's short Chinese explanation (:mod:`preprocess.recipes.classic`), kept
for comparison. ``steps``: recipes whose every line is one small operation written as a claim that
:mod:`preprocess.recipes.check` re-computes exactly (column addition/subtraction, one-digit partial
products, bounded long division, digit-by-digit square root, repeated multiplication,
substitution). ``digits``: ``steps`` with digit-spaced column addition/subtraction and a two-decimal
precision for division and square root (:mod:`preprocess.recipes.digits`). Each recipe ends with a line
whose last number is the reference answer as the contest wrote it, so the target passes ``exact``
grading (policy in ``docs/preprocess.md``).
"""
from __future__ import annotations

from .arithmetic import RECIPES as _ARITHMETIC
from .check import StepError, check_steps
from .word import RECIPES as _WORD

RECIPES = {**_ARITHMETIC, **_WORD}

__all__ = ["RECIPES", "StepError", "check_steps"]
