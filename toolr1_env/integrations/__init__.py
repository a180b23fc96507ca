"""Adapters that let other RL trainers drive ``ToolR1-GAIA-v0`` (each imports nothing of its trainer at module
level, and nothing of ``agents``; ``verifiers_env`` is the exception: it is a verifiers plugin, imported only by
verifiers through the ``toolr1_gaia`` shim).

| module | trainer | what it gives |
|---|---|---|
| :mod:`toolr1_env.integrations.trl` | TRL ``GRPOTrainer`` | ``task_dataset``; ``ToolR1Environment`` (env factory) |
| :mod:`toolr1_env.integrations.skyrl` | SkyRL | ``ToolR1TextEnv``, a ``BaseTextEnv`` (text in, messages out) |
| :mod:`toolr1_env.integrations.verifiers_env` | verifiers 0.4 | the ``toolr1-gaia`` taskset, env and chat harness |

TRL's ``rollout_func`` route (our own multi-turn code episodes, token in / token out, with the dynamic sample
queue) lives with the learner, in :mod:`agents.trl`. Recipes for verl and GEM: ``docs/integrations.md``.
"""
