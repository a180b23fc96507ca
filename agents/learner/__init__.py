"""The GRPO learner: policy, rollouts, loss, dynamic sample queue, checkpoints and the training script.

``records`` (typed records crossing module boundaries), ``model_loading`` (offline SmolLM2 and test
models), ``policy`` (LoRA policy: prompting, sampling, log-probs), ``chat_format`` (turns as token ids
under the model's own chat template, checked by a round trip), ``decoding`` (the batched KV-cache sampling
loop, on merged adapter weights), ``sampling`` (token choice and stop rules), ``scoring`` (chunked
log-probs, what a model offers), ``rollout`` (training episodes through :mod:`agents.engine`), ``grpo``
(advantages and the loss), ``update`` (re-scoring and optimiser steps), ``data_parallel`` (every
collective of multi-process training), ``sample_queue`` (replay of cached successes), ``checkpointing``,
``run_log`` (metrics and curves), ``train`` (the training run; ``agents/train_grpo.py``).
"""
