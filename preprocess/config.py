"""Pipeline settings: defaults, the ``--config`` YAML file, and command-line overrides.

YAML keys (all optional; ``configs/preprocess/quotas_example.yaml`` shows each one):
    format         "auto" or a reader format (``preprocess.readers.FORMATS``)
    eval_size      int >= 0, verified items held out for evaluation
    seed           int, seeds the hold-out draw and the quota draws
    workers        processes for classify/verify (0: one per available core)
    near_duplicates  {threshold: 0 < t < 1, categories: [...]} or false to switch it off
    rounding       {category: decimals}, applied to verified training targets
    quotas         see ``preprocess.quotas``
    contamination  [eval files]; training items whose normalized problem occurs there are dropped
    logic_style    "plain" or "thinking" (``preprocess.logic.STYLES``)
    target_style   "pot_cot" (default): the contest's computational items train on the
                   expression line, then the CoT that computes it (tool-assisted and tool-free
                   answers from one generation; the expression alone is the record's fallback
                   when the whole does not fit the token budget); "pot": a program-of-thought
                   target ending in an expression (``preprocess.pot_targets``); "cot":
                   step-by-step text only; the other categories keep their CoT
    cot_style      which step-by-step text "cot" is (``preprocess.styles.COT_STYLES``):
                   "steps" (default: every line one re-checked small operation), "digits" (steps
                   with digit-spaced addition/subtraction and 2-decimal quotients/roots,
                   ``preprocess.recipes.digits``) or "classic"
    teacher        {base_url, model, mode, cache_dir, api_key_env, max_attempts, workers,
                    timeout, max_retries, temperature, max_tokens, stream}, see
                    ``preprocess.teacher.TeacherClient``
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import yaml

from .classify import CATEGORIES
from .logic import STYLES
from .readers import FORMATS
from .styles import COT_STYLES, DEFAULT_COT_STYLE, TARGET_STYLE, TARGET_STYLES
from .quotas import Quota, parse_quotas
from .teacher import MODES

# Free-text categories: their near-duplicates are rewordings of one problem, while two contest
# computational items differing in a number are different problems.
NEAR_DUP_CATEGORIES = ("word_problem", "english", "other")
# Answers that preprocess.rounding cannot round: MATH \boxed{} LaTeX, fractions a/b, option letters.
NON_DECIMAL_ANSWERS = ("english", "simplify", "logic")
_TEACHER_KEYS = {"base_url", "model", "mode", "cache_dir", "api_key_env", "max_attempts", "workers",
                 "timeout", "max_retries", "temperature", "max_tokens", "stream"}


@dataclass(frozen=True)
class PreprocessConfig:
    """Validated settings of one pipeline run (see the module doc for their meaning)."""

    format: str = "auto"
    eval_size: int = 0
    seed: int = 0
    workers: int = 0
    near_dup_threshold: float | None = 0.85
    near_dup_categories: tuple[str, ...] = NEAR_DUP_CATEGORIES
    rounding: dict[str, int] = field(default_factory=dict)
    quotas: dict[str, Quota] = field(default_factory=dict)
    contamination: tuple[str, ...] = ()
    logic_style: str = "plain"
    target_style: str = "pot_cot"  # the main job's (research/run/settings.py DEFAULTS), so both agree
    cot_style: str = DEFAULT_COT_STYLE
    teacher: dict | None = None

    def with_overrides(self, **overrides) -> "PreprocessConfig":
        """Return a copy with every override that is not None applied, validated."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "contamination" in given:
            given["contamination"] = tuple(str(p) for p in given["contamination"])
        cfg = replace(self, **given)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        if self.format != "auto" and self.format not in FORMATS:
            raise ValueError(f"format must be 'auto' or one of {sorted(FORMATS)}, got {self.format!r}")
        for name in ("eval_size", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.near_dup_threshold is not None and not 0 < self.near_dup_threshold < 1:
            raise ValueError(f"near_duplicates.threshold must be in (0, 1), got {self.near_dup_threshold}")
        for cat in (*self.near_dup_categories, *self.rounding, *(c for c in self.quotas if c != "default")):
            if cat not in CATEGORIES:
                raise ValueError(f"unknown category {cat!r}; expected one of {CATEGORIES}")
        for cat, decimals in self.rounding.items():
            if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
                raise ValueError(f"rounding for {cat!r} must be an integer >= 0, got {decimals!r}")
            if cat in NON_DECIMAL_ANSWERS:
                raise ValueError(f"rounding for {cat!r}: its answers are not decimal numbers "
                                 f"(rounding applies to categories other than {NON_DECIMAL_ANSWERS})")
        if self.logic_style not in STYLES:
            raise ValueError(f"logic_style must be one of {STYLES}, got {self.logic_style!r}")
        if self.target_style not in TARGET_STYLES:
            raise ValueError(f"target_style must be one of {TARGET_STYLES}, got {self.target_style!r}")
        if not TARGET_STYLE[self.target_style].holds_cot and self.rounding:
            raise ValueError(f"rounding applies to CoT answers; target_style {self.target_style} trains on "
                             "expressions whose executed value is graded, so leave rounding empty")
        if self.cot_style not in COT_STYLES:
            raise ValueError(f"cot_style must be one of {COT_STYLES}, got {self.cot_style!r}")
        if self.teacher is not None:
            unknown = set(self.teacher) - _TEACHER_KEYS
            if unknown:
                raise ValueError(f"teacher: unknown keys {sorted(unknown)}")
            for key in ("base_url", "model"):
                if not isinstance(self.teacher.get(key), str) or not self.teacher[key]:
                    raise ValueError(f"teacher.{key} is required (a non-empty string)")
            if self.teacher.get("mode", "match") not in MODES:
                raise ValueError(f"teacher.mode must be one of {MODES}, got {self.teacher['mode']!r}")
            if not isinstance(self.teacher.get("stream", False), bool):
                raise ValueError(f"teacher.stream must be true or false, got {self.teacher['stream']!r}")


def load_config(path: str | os.PathLike | None) -> PreprocessConfig:
    """Read a YAML config file (None gives the defaults).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not YAML, not a mapping, an unknown key or a bad value; the message names
            the file and the key.
    """
    if path is None:
        return PreprocessConfig()
    text = Path(path).read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    known = {f.name for f in fields(PreprocessConfig)} - {"near_dup_threshold", "near_dup_categories"}
    unknown = set(raw) - known - {"near_duplicates"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    kwargs = {k: v for k, v in raw.items() if k in known}
    try:
        if "near_duplicates" in raw:
            nd = raw["near_duplicates"]
            if nd is False:
                kwargs["near_dup_threshold"] = None
            elif isinstance(nd, dict) and set(nd) <= {"threshold", "categories"}:
                kwargs["near_dup_threshold"] = float(nd.get("threshold", 0.85))
                kwargs["near_dup_categories"] = tuple(nd.get("categories", NEAR_DUP_CATEGORIES))
            else:
                raise ValueError("near_duplicates must be false or {threshold, categories}")
        kwargs["quotas"] = parse_quotas(raw.get("quotas"))
        if "contamination" in raw:
            files = raw["contamination"]
            if not isinstance(files, list):
                raise ValueError("contamination must be a list of files")
            # Relative paths are relative to the config file, so a config travels with its data.
            kwargs["contamination"] = tuple(str((Path(path).parent / f)) for f in files)
        if "rounding" in raw and not isinstance(raw["rounding"], dict):
            raise ValueError("rounding must be a mapping of category to decimals")
        cfg = PreprocessConfig(**kwargs)
        cfg.validate()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return cfg
