"""Evaluation of math-reasoning generations for the Ascend 2024 contest (topic 2) reproduction.

Modules: ``extract`` (final answer from free text), ``compare`` (matching rules), ``math_accuracy``
(scores, contest score, Markdown table), ``generate`` (batched greedy decoding, transformers),
``math`` (CLI, ``python -m eval.math``), ``report`` (loss plot, report.md), ``files`` (atomic I/O).
"""
