#!/usr/bin/env bash
# Upload a run directory (checkpoints, logs, reports) to obs://bucket/prefix/<run-id>/, resumable and
# verified (size + MD5/ETag); rerun the same command after an interruption to send only missing parts.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<'USAGE'
Usage: bash scripts/upload_obs.sh --dest obs://bucket/prefix RUN_DIR [options]

Uploads every file of RUN_DIR (e.g. logs/<run-id>) to obs://bucket/prefix/<run-id>/ with the OBS SDK's
resumable multipart upload, then checks each object's size and ETag against the local file.

Options:
  --dest obs://bucket/prefix   destination (required)
  --run_id ID                  object folder name (default: RUN_DIR's name)
  --include GLOB [GLOB ...]    only these relative paths, e.g. --include '*.ckpt' '*.md' '*.jsonl'
  --part_size_mb N             multipart part size in MiB (default 16; >= 5 except the last part)
  --task_num N                 parts uploaded concurrently (default 4)
  --config FILE                OBS settings file (YAML/JSON: endpoint, access_key_id, secret_access_key, ...)
  --record_dir DIR             resume records (default ~/.cache/mathlora/obs_records)
  -h, --help                   this help

Credentials: OBS_ACCESS_KEY_ID, OBS_SECRET_ACCESS_KEY, OBS_ENDPOINT (environment, wins) or --config /
$OBS_CONFIG. They are never printed. See docs/obs.md. Download or list with
  .venv/bin/python -m research.obs --dest obs://bucket/prefix download <run-id> OUT_DIR
  .venv/bin/python -m research.obs --dest obs://bucket/prefix list [<run-id>]
USAGE
}

GLOBAL=()
UPLOAD=()
RUN_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dest|--part_size_mb|--task_num|--config|--record_dir) GLOBAL+=("$1" "$2"); shift ;;
    --run_id) UPLOAD+=("$1" "$2"); shift ;;
    --include) UPLOAD+=("$1"); shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do UPLOAD+=("$1"); shift; done
               continue ;;
    -h|--help) usage; exit 0 ;;
    --*) echo "upload_obs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$RUN_DIR" ] || { echo "upload_obs.sh: one RUN_DIR only" >&2; exit 2; }; RUN_DIR=$1 ;;
  esac
  shift
done
[ -n "$RUN_DIR" ] || { usage >&2; exit 2; }
# Checked before any OBS setting: a wrong path is the first thing to fix.
[ -d "$RUN_DIR" ] || { echo "upload_obs.sh: run directory not found: $RUN_DIR" >&2; exit 2; }
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
cd "$ROOT"
exec "$PY" -m research.obs "${GLOBAL[@]}" upload "$(realpath "$RUN_DIR")" "${UPLOAD[@]}"
