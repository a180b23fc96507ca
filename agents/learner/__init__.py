"""The GRPO learner: policy, rollouts, loss, dynamic sample queue, checkpoints and the training script.

``records`` (typed records crossing module boundaries), ``model_loading`` (offline SmolLM2 and test
models), ``policy`` (LoRA policy: prompting, sampling, log-probs), ``sampling`` (token choice and stop
rules), ``rollout`` (training episodes through :mod:`agents.engine`), ``grpo`` (advantages and the loss),
``update`` (re-scoring and optimiser steps), ``sample_queue`` (replay of cached successes),
``checkpointing``, ``run_log`` (metrics and curves), ``train`` (the training run; ``agents/train_grpo.py``).
"""
