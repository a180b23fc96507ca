"""agents: what plays and learns in ToolR1-GAIA-v0, by job.

| subpackage / module | job |
|---|---|
| :mod:`agents.engine` | the one episode engine: keep N episodes in flight over a vector env |
| :mod:`agents.learner` | the GRPO learner (policy, rollouts, loss, dynamic sample queue, training run) |
| :mod:`agents.players` | the agent interface and its players (OpenAI-compatible, local, scripted, reference) |
| :mod:`agents.evaluation` | evaluation runs, GAIA metrics, submission file and HTML report |
| :mod:`agents.trl` | TRL's ``GRPOTrainer`` playing our episodes: its ``rollout_func``, with the sample queue |
| :mod:`agents.cli` | the one command-line mechanism (dataclass fields with help lines) |

``agents/train_grpo.py``, ``agents/train_trl.py`` and ``agents/evaluate.py`` are thin script shims over
``agents.learner.train``, ``agents.trl.train`` and ``agents.evaluation.run``. ``toolr1_env`` never imports ``agents``.
"""
