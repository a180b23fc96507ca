"""TRL's ``GRPOTrainer`` playing toolr1 episodes: our multi-turn code rollouts and dynamic sample queue inside TRL.

| name | what it is |
|---|---|
| :func:`make_rollout_func` | the ``rollout_func``: code episodes on our vector env, token in / out, queue |
| :func:`toolr1_reward` | the matching reward function (each episode's env reward; None for infrastructure errors) |
| :class:`SampleQueueCheckpoint` | keeps the rollout's queue in TRL checkpoints (registered by the rollout itself) |
| :mod:`agents.trl.train` | the training command (``python agents/train_trl.py``): GRPOTrainer with all of the above |

The dataset: :func:`toolr1_env.integrations.trl.task_dataset`. TRL's own JSON tool loop instead:
:class:`toolr1_env.integrations.trl.ToolR1Environment`. Recipes: ``docs/integrations.md``.

This package is named after the library it adapts; its modules import the real ``trl`` with absolute imports
(and only when a trainer calls them), and the script shims keep ``agents/`` off ``sys.path``.
"""

from __future__ import annotations

from agents.trl.batch import to_trl_batch, toolr1_reward
from agents.trl.checkpoint import SampleQueueCheckpoint
from agents.trl.rollout import ToolR1Rollout, make_rollout_func

__all__ = ["SampleQueueCheckpoint", "ToolR1Rollout", "make_rollout_func", "to_trl_batch", "toolr1_reward"]
