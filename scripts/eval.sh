#!/usr/bin/env bash
# Evaluate a fine-tuning run (logs/<run-id>/ written by scripts/finetune.sh): math accuracy, base
# capability (SQuAD-style EM/F1, 90% rule) and Tianchi logic, each for the base model and with the LoRA.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<'USAGE'
Usage: bash scripts/eval.sh --run_dir logs/RUN [options]

Runs, for the base checkpoint and then with the run's lora.ckpt (before/after):
  python -m eval.math  on --math items   -> RUN/eval/math_{base,lora}/
  python -m eval.base  on --squad files  -> RUN/eval/base_<file>_{base,lora}/ (90% rule vs base)
  python -m eval.logic on --logic file   -> RUN/eval/logic_{base,lora}/ (Tianchi submission.jsonl)

Options:
  --run_dir DIR            the run directory (required)
  --config YAML            MindFormers YAML (default: RUN/config.yaml)
  --load_checkpoint CKPT   base checkpoint (default: RUN/base.ckpt if present, else .cache/base/smollm2_135m.ckpt)
  --lora_checkpoint CKPT   adapter (default: RUN/lora.ckpt)
  --math FILE              math items (default: RUN/data/eval.jsonl; contest, GSM8K, CMATH files work too)
  --squad FILE [FILE ...]  SQuAD v1.1-format files (default: none)
  --logic FILE             Tianchi JSONL (default: none)
  --limit N                first N items of each set (default: all)
  --backend NAME           transformers (KV cache) or mindformers (default: transformers)
  --max_new_tokens N       math / logic generation budget (default 192; base capability uses 64)
  --batch_size N           prompts per batch (default 8)
  --num_samples N          logic self-consistency samples per question (default 1 = greedy)
  -h, --help               this help
USAGE
}

RUN=""; CONFIG=""; BASE_CKPT=""; LORA=""; MATH=""; SQUAD=(); LOGIC=""; LIMIT=(); BACKEND=transformers
MAX_NEW_TOKENS=192; BATCH=8; NUM_SAMPLES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --run_dir) RUN=$(realpath "$2"); shift ;;
    --config) CONFIG=$(realpath "$2"); shift ;;
    --load_checkpoint) BASE_CKPT=$(realpath "$2"); shift ;;
    --lora_checkpoint) LORA=$(realpath "$2"); shift ;;
    --math) MATH=$(realpath "$2"); shift ;;
    --squad) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do SQUAD+=("$(realpath "$1")"); shift; done; continue ;;
    --logic) LOGIC=$(realpath "$2"); shift ;;
    --limit) LIMIT=(--limit "$2"); shift ;;
    --backend) BACKEND=$2; shift ;;
    --max_new_tokens) MAX_NEW_TOKENS=$2; shift ;;
    --batch_size) BATCH=$2; shift ;;
    --num_samples) NUM_SAMPLES=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "eval.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$RUN" ] || { echo "eval.sh: --run_dir is required (see --help)" >&2; exit 2; }
CONFIG=${CONFIG:-$RUN/config.yaml}
LORA=${LORA:-$RUN/lora.ckpt}
MATH=${MATH:-$RUN/data/eval.jsonl}
if [ -z "$BASE_CKPT" ]; then
  if [ -f "$RUN/base.ckpt" ]; then BASE_CKPT="$RUN/base.ckpt"; else BASE_CKPT="$ROOT/.cache/base/smollm2_135m.ckpt"; fi
fi
for f in "$CONFIG" "$BASE_CKPT" "$LORA"; do
  [ -f "$f" ] || { echo "eval.sh: missing $f" >&2; exit 1; }
done

PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LOCAL_DEFAULT_PATH="$RUN/mindformers"
export GLOG_v=${GLOG_v:-3}
OUT="$RUN/eval"
MODEL=(--config "$CONFIG" --load_checkpoint "$BASE_CKPT" --backend "$BACKEND" --batch_size "$BATCH")

if [ -f "$MATH" ]; then
  echo "== math: $MATH"
  "$PY" -m eval.math --items "$MATH" "${MODEL[@]}" "${LIMIT[@]}" --max_new_tokens "$MAX_NEW_TOKENS" \
    --output_dir "$OUT/math_base"
  "$PY" -m eval.math --items "$MATH" "${MODEL[@]}" "${LIMIT[@]}" --max_new_tokens "$MAX_NEW_TOKENS" \
    --lora_checkpoint "$LORA" --baseline "$OUT/math_base/metrics.json" --output_dir "$OUT/math_lora"
fi

for S in "${SQUAD[@]}"; do
  NAME=$(basename "$S" .json)
  echo "== base capability: $S"
  "$PY" -m eval.base --squad "$S" "${MODEL[@]}" "${LIMIT[@]}" --output_dir "$OUT/base_${NAME}_base"
  "$PY" -m eval.base --squad "$S" "${MODEL[@]}" "${LIMIT[@]}" --lora_checkpoint "$LORA" \
    --baseline "$OUT/base_${NAME}_base/metrics.json" --output_dir "$OUT/base_${NAME}_lora"
done

if [ -n "$LOGIC" ]; then
  echo "== logic: $LOGIC"
  "$PY" -m eval.logic --items "$LOGIC" "${MODEL[@]}" "${LIMIT[@]}" --max_new_tokens "$MAX_NEW_TOKENS" \
    --num_samples "$NUM_SAMPLES" --output_dir "$OUT/logic_base"
  "$PY" -m eval.logic --items "$LOGIC" "${MODEL[@]}" "${LIMIT[@]}" --max_new_tokens "$MAX_NEW_TOKENS" \
    --num_samples "$NUM_SAMPLES" --lora_checkpoint "$LORA" --output_dir "$OUT/logic_lora"
fi
echo "== done: $OUT"
