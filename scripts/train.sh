#!/usr/bin/env bash
# Set up (idempotently) and run the main job: the main recipe (agents/learner/presets.py, multistep) on the
# bundled model (SmolLM2-135M-Instruct) and the bundled level-0/1 tasks, on CPU: a supervised warm-up on
# demonstrations, then GRPO on tasks of its own, held-out evaluations and a table at the end. Extra arguments
# go to agents/train_grpo.py (see --help; --preset single-step for the one-turn run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python agents/train_grpo.py "$@"
