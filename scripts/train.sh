#!/usr/bin/env bash
# Set up (idempotently) and run the main job: a short GRPO training run of the bundled model
# (SmolLM2-135M-Instruct) on the bundled warm-up and level-1 tasks, on CPU. Extra arguments go to
# agents/train_grpo.py (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python agents/train_grpo.py "$@"
