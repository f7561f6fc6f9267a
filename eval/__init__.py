"""Evaluation for the Ascend 2024 contest (topic 2) reproduction; user guide: docs/eval.md.

CLIs: ``math`` (contest math accuracy, ``python -m eval.math``), ``base`` (SQuAD-style EM/F1 and the
90% rule, ``python -m eval.base``), ``logic`` (Tianchi voting and submission, ``python -m eval.logic``).
Parts: ``extract`` (final answer from free text), ``compare`` (matching rules), ``pot`` (executed
program-of-thought expressions, tool-assisted accuracy), ``math_accuracy``
(scores, contest score, Markdown table), ``math_items`` (contest/GSM8K/CMATH items), ``squad``
(SQuAD items and metrics), ``logic_vote`` (letters, votes, submission), ``model_args`` (model options
shared by the CLIs), ``generate`` (transformers backend), ``mf_generate`` (MindFormers backend),
``sampling`` (numpy greedy/top-p), ``plots`` (bar charts), ``report`` (loss plot, report.md),
``files`` (JSON/JSONL reading).
"""
