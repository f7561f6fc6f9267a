#!/usr/bin/env bash
# Behaviour check for a restructure (docs/architecture.md, "Behaviour check"): runs the default job's
# data path (generator -> preprocess -> MindRecord, the commands and flags research/run/stages/data.py uses
# with the default settings) into OUT (default /tmp/mathlora_check) and prints the sha256 of every
# output, so that the same command on two commits can be compared line by line. With --smoke it also
# runs `bash scripts/finetune.sh --smoke --run_id RUN_ID` and hashes that run's data, MindRecord and
# loss.jsonl's step, loss, lr and global_norm (its elapsed_s, tokens_per_s and peak_host_mb are
# timings, different on every run). Usage: bash benchmarks/behaviour_check.sh [--smoke RUN_ID] [OUT]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3
SMOKE=""
if [ "${1:-}" = "--smoke" ]; then SMOKE="$2"; shift 2; fi
OUT=${1:-/tmp/mathlora_check}
rm -rf "$OUT"; mkdir -p "$OUT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" GLOG_v=3 HF_HUB_OFFLINE=1
# Default settings of research/run/settings.py: 3000 samples, seed 0, eval_size 100, pot_cot/steps,
# the generated corpus' quotas, the SmolLM2 YAML (seq_length 256), vicuna_v1.1, 192 new tokens.
"$PY" -m preprocess.synthesize --n 3000 --seed 0 --output "$OUT/generated.jsonl" > "$OUT/synthesize.log" 2>&1
"$PY" -m preprocess --input "$OUT/generated.jsonl" --output_dir "$OUT/data" --eval_size 100 --seed 0 \
    --logic_style plain --target_style pot_cot --cot_style steps \
    --config configs/preprocess/generated_corpus.yaml > "$OUT/preprocess.log" 2>&1
"$PY" -m research.llama3.records.mindrecord --dataset_type qa --input_glob "$OUT/data/conversations.json" \
    --config configs/smollm2_135m/finetune_lora_cpu.yaml --seq_length 256 --template vicuna_v1.1 \
    --output_file "$OUT/train.mindrecord" --max_new_tokens 192 --drop_overlong > "$OUT/mindrecord.log" 2>&1
(cd "$OUT" && sha256sum generated.jsonl data/*.jsonl data/conversations.json train.mindrecord train.mindrecord.db)
if [ -n "$SMOKE" ]; then
    rm -rf "logs/$SMOKE"
    bash scripts/finetune.sh --smoke --run_id "$SMOKE" > "$OUT/smoke.log" 2>&1
    (cd "logs/$SMOKE" && sha256sum data/*.jsonl data/conversations.json train.mindrecord train.mindrecord.db)
    "$PY" -c 'import hashlib, json, sys
rows = [{k: json.loads(line)[k] for k in ("step", "loss", "lr", "global_norm")} for line in open(sys.argv[1])]
print(hashlib.sha256(json.dumps(rows).encode()).hexdigest(), " loss.jsonl (step, loss, lr, global_norm)")' "logs/$SMOKE/loss.jsonl"
fi
