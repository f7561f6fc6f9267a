#!/usr/bin/env bash
# The main job: data -> preprocess -> MindRecord -> base checkpoint -> LoRA fine-tuning (MindFormers)
# -> math accuracy before/after -> report, all under logs/<run-id>/ with its run.json manifest.
# The stages, their skipping and every option's rules live in research/run/ (python -m research.run);
# this script only finds the interpreter. Options: bash scripts/finetune.sh --help
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3
exec env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m research.run finetune "$@"
