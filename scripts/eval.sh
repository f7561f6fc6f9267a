#!/usr/bin/env bash
# Evaluate a fine-tuning run (logs/<run-id>/ written by scripts/finetune.sh), base model and LoRA: math
# accuracy on the run's eval items; with --squad FILE base capability (SQuAD-style EM/F1, 90% rule), with
# --logic FILE Tianchi logic. Another item set or --limit N writes a directory of its own.
# The base checkpoint, config, chat template and tokenizer file come from the run's run.json
# (python -m research.run eval). Options: bash scripts/eval.sh --help
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3
exec env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m research.run eval "$@"
