#!/usr/bin/env bash
# Optional: a virtualenv for verifiers 0.4 (vf-eval) in .cache/venv-verifiers, for tests/test_verifiers_env.py and
# the `toolr1-gaia` taskset (docs/integrations.md). verifiers pins openai<3 and mcp==2.0.0, which clash with the
# project's own environment, hence a separate one; it imports toolr1_env from this checkout via PYTHONPATH.
# ~2 minutes from PyPI; not part of scripts/setup.sh (CI stays lean). A second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.cache/venv-verifiers
if [ -x "$VENV/bin/vf-eval" ]; then
  exit 0
fi
PY=${PYTHON:-python3}
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# verifiers itself, plus what toolr1_env needs to play in process or as a client of environment servers.
"$VENV/bin/python" -m pip install -q "verifiers==0.4.0" "websockets>=13" "gymnasium>=1.0" "pandas>=2.0" "openpyxl>=3.1" \
  "python-docx>=1.0" "python-pptx>=1.0" "pypdf>=4.0" "reportlab>=4.0" "pillow>=10.0" "mutagen>=1.45" "xlrd>=2.0"
echo "[setup_verifiers] vf-eval ready: $VENV/bin/vf-eval (run with PYTHONPATH=$(pwd))"
