#!/usr/bin/env bash
# Multi-worker LoRA fine-tuning through MindSpore's msrun: one research/llama3/train/finetune.py per rank.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<'USAGE'
Usage: bash scripts/msrun_launcher.sh [launcher options] -- [research.llama3.train.finetune options]

Starts msrun (MindSpore's distributed launcher) with one worker per device; every worker runs
research/llama3/train/finetune.py with the options after "--" (see python -m research.llama3.train.finetune --help).
The YAML must set use_parallel: True and parallel_config.data_parallel x model_parallel x
pipeline_stage = --worker_num (configs/llama3_8b/finetune_lora_910b_{4p,8p}*.yaml,
configs/tiny/finetune_lora_cpu_dp2.yaml). Per-rank logs: <log_dir>/worker_<N>.log and scheduler.log.

Launcher options:
  --worker_num N         workers in the whole job (default 8)
  --local_worker_num N   workers on this node (default: --worker_num, i.e. one node)
  --master_addr ADDR     scheduler host, the same on every node (default 127.0.0.1)
  --master_port PORT     scheduler port (default 8118)
  --node_rank R          this node's index, 0 .. nodes-1; required when --local_worker_num < --worker_num
  --cluster_time_out S   seconds to wait for all workers to join (default 600)
  --run_id ID            logs go to logs/<ID>/msrun/ (default: a timestamp)
  --log_dir DIR          per-rank log directory (overrides --run_id's)
  -h, --help             this help

Example (8 Ascend cards, one node):
  bash scripts/msrun_launcher.sh --worker_num 8 --run_id llama3-8p -- \
    --config configs/llama3_8b/finetune_lora_910b_8p.yaml --train_dataset train.mindrecord \
    --load_checkpoint llama3_8b.ckpt --output_dir logs/llama3-8p/output --run_dir logs/llama3-8p
Two nodes of 8: the same command on both with --worker_num 16 --local_worker_num 8
--master_addr <node 0 IP> --node_rank 0 (resp. 1). Without --node_rank msrun exports no per-worker
RANK_ID, so every worker would take itself for rank 0 and share one run_dir, loss log and checkpoint
folder: the launcher refuses to start. Multi-node also needs --output_dir (and --run_dir) on storage
all nodes share (NFS, SFS): with auto_trans_ckpt MindFormers writes the distributed checkpoint and
strategy files under output_dir on one node and reads them on all; when MindFormers cannot tell that
the path is shared, export SHARED_PATHS=<that mount> on every node (docs/ascend.md).
USAGE
}

WORKER_NUM=8
LOCAL_WORKER_NUM=""
MASTER_ADDR=127.0.0.1
MASTER_PORT=8118
NODE_RANK=""
CLUSTER_TIME_OUT=600
RUN_ID=""
LOG_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --worker_num) WORKER_NUM=$2; shift ;;
    --local_worker_num) LOCAL_WORKER_NUM=$2; shift ;;
    --master_addr) MASTER_ADDR=$2; shift ;;
    --master_port) MASTER_PORT=$2; shift ;;
    --node_rank) NODE_RANK=$2; shift ;;
    --cluster_time_out) CLUSTER_TIME_OUT=$2; shift ;;
    --run_id) RUN_ID=$2; shift ;;
    --log_dir) LOG_DIR=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "msrun_launcher.sh: unknown option $1 (training options go after --; see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ $# -gt 0 ] || { echo "msrun_launcher.sh: no training options after -- (see --help)" >&2; exit 2; }
if [ "${LOCAL_WORKER_NUM:-$WORKER_NUM}" -lt "$WORKER_NUM" ] && [ -z "$NODE_RANK" ]; then
  echo "msrun_launcher.sh: multi-node job (--local_worker_num ${LOCAL_WORKER_NUM} < --worker_num ${WORKER_NUM})" \
    "needs --node_rank (0 on the node at --master_addr, 1, 2, ... on the others); without it every worker" \
    "would be rank 0 and write the same run_dir and checkpoints. Put --output_dir on storage all nodes share" \
    "(or export SHARED_PATHS=<mount>); see --help" >&2
  exit 2
fi

LOG_DIR=${LOG_DIR:-$ROOT/logs/${RUN_ID:-$(date +%Y%m%d-%H%M%S)}/msrun}
mkdir -p "$LOG_DIR"
# msrun starts each worker with the `python` on PATH; make that the project's interpreter.
[ -x "$ROOT/.venv/bin/python" ] && export PATH="$ROOT/.venv/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export GLOG_v=${GLOG_v:-3}
EXTRA=()
[ -n "$NODE_RANK" ] && EXTRA+=(--node_rank "$NODE_RANK")
msrun --worker_num "$WORKER_NUM" --local_worker_num "${LOCAL_WORKER_NUM:-$WORKER_NUM}" \
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" --log_dir "$LOG_DIR" \
  --cluster_time_out "$CLUSTER_TIME_OUT" --join True "${EXTRA[@]}" \
  "$ROOT/research/llama3/train/finetune.py" "$@"
