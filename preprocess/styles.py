"""The one registry of training-target styles: each name with its renderer, its checker and its budget.

Two choices make a computational item's training target. The *CoT style* (``--cot_style``,
``COT_STYLE``) is how its step-by-step text is written: ``classic`` (the re-derivation's short Chinese
explanation, then the given solution line: :mod:`preprocess.recipes.classic`), ``steps`` (every line
one small operation written as a claim: :mod:`preprocess.recipes`) or ``digits`` (``steps`` with
digit-spaced columns and 2-decimal quotients and roots: :mod:`preprocess.recipes.digits`). The *target
style* (``--target_style``, ``TARGET_STYLE``) is what the item trains on: ``cot`` (that text), ``pot``
(a program-of-thought expression: :mod:`preprocess.pot_targets`) or ``pot_cot`` (the expression, then
the text). The other categories train on their CoT whatever the styles.

The token budget is the run's (``seq_length`` and ``max_new_tokens``, checked by
:func:`preprocess.budget.over_budget` when ``research.llama3.records.mindrecord`` writes the records); a
target style's ``compose`` names the shorter target trained on instead when the whole is over it
(``fallback_conversations``), or None where there is none.

Adding a style is one module (a CoT style: its recipes per category and its line checker, as
:mod:`preprocess.recipes.digits`) and one line in ``COT_STYLE`` or ``TARGET_STYLE``; the command
line, the runner's option check, the run report and the tests read the names from here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

from .pot_targets import pot_target
from .recipes import RECIPES, check_steps
from .recipes.digits import RECIPES as DIGIT_RECIPES, check_digit_steps


@dataclass(frozen=True)
class CotStyle:
    """How the step-by-step text of a computational item is written.

    Attributes:
        recipes: category -> ``recipe(problem match, answer) -> lines``, the whole target; None: the
            re-derivation's lines (:data:`preprocess.recipes.classic.BUILDERS`) then the given solution.
        check: raises :class:`preprocess.recipes.StepError` on a recipe line that does not re-compute.
    """

    recipes: Mapping[str, Callable[[re.Match[str], str], list[str]]] | None = None
    check: Callable[[list[str]], None] | None = None

    @property
    def claims(self) -> bool:
        """Whether every line is a re-checked claim (rounding then writes ``≈`` before the answer)."""
        return self.recipes is not None

    def lines(self, category: str, m: re.Match[str], answer: str, derived: list[str], given: str) -> list[str]:
        """The target's lines, from the re-derivation's ``derived`` lines and the ``given`` solution."""
        if self.recipes is None:
            return [*derived, given]
        lines = self.recipes[category](m, answer)
        self.check(lines)
        return lines


def _pot_only(pot: str, cot: str) -> tuple[str, None]:
    return pot, None


def _pot_then_cot(pot: str, cot: str) -> tuple[str, str]:
    # One generation gives the tool-assisted answer (the expression) and the tool-free one (the CoT).
    return f"{pot}\n{cot}", pot


@dataclass(frozen=True)
class TargetStyle:
    """What a verified computational item trains on.

    Attributes:
        describe: the style as the run report names it, given the CoT style.
        pot: renders the item's PoT expression target and checks that it evaluates to the verified
            answer (raises ValueError otherwise); None: the item trains on its CoT text alone.
        compose: with ``pot``, ``(pot target, CoT text) -> (training target, fallback)``, the fallback
            being what trains when the whole target is over the token budget (None: no fallback).
        holds_cot: whether the target holds the CoT text, which rounding may rewrite.
    """

    describe: Callable[[str], str]
    pot: Callable[[str, str, str], str] | None = None
    compose: Callable[[str, str], tuple[str, str | None]] | None = None
    holds_cot: bool = True


COT_STYLE: dict[str, CotStyle] = {
    "classic": CotStyle(),
    "steps": CotStyle(RECIPES, check_steps),
    "digits": CotStyle({**RECIPES, **DIGIT_RECIPES}, check_digit_steps),
}
TARGET_STYLE: dict[str, TargetStyle] = {
    "cot": TargetStyle(lambda cot_style: f"cot ({cot_style})"),
    "pot": TargetStyle(lambda cot_style: "pot (expressions, eval --mode pot)", pot=pot_target, compose=_pot_only,
                       holds_cot=False),
    "pot_cot": TargetStyle(lambda cot_style: f"pot_cot (expression, then {cot_style} CoT; eval --mode pot)",
                           pot=pot_target, compose=_pot_then_cot),
}
COT_STYLES = tuple(COT_STYLE)
TARGET_STYLES = tuple(TARGET_STYLE)
DEFAULT_COT_STYLE = "steps"
