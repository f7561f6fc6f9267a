"""One owner for a fine-tuning run: the ``logs/<run-id>/`` layout, its ``run.json`` manifest, and the
pipeline runner (``python -m research.run``) that scripts/finetune.sh and scripts/eval.sh call."""
