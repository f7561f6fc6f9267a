"""Training-target styles for the contest's computational categories.

``classic``: the original short Chinese explanation (``preprocess.cot``), kept for comparison.
``steps``: recipes whose every line is one small operation written as a claim that
:mod:`preprocess.recipes.check` re-computes exactly (column addition/subtraction, one-digit partial
products, bounded long division, digit-by-digit square root, repeated multiplication,
substitution). Each recipe ends with a line whose last number is the reference answer as the
contest wrote it, so the target passes ``exact`` grading (policy in ``docs/preprocess.md``).
"""
from __future__ import annotations

from .arithmetic import RECIPES as _ARITHMETIC
from .check import StepError, check_steps
from .word import RECIPES as _WORD

STYLES = ("classic", "steps")
DEFAULT_STYLE = "steps"
RECIPES = {**_ARITHMETIC, **_WORD}

__all__ = ["STYLES", "DEFAULT_STYLE", "RECIPES", "StepError", "check_steps"]
