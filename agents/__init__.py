"""agents: the GRPO learner for ToolR1-GAIA-v0 (policy, rollouts, loss, dynamic sample queue).

Modules: ``records`` (typed records crossing module boundaries), ``model_loading`` (offline SmolLM2 and
test models), ``policy`` (LoRA policy: prompting, sampling, log-probs), ``sampling`` (token choice and stop
rules), ``grpo`` (advantages and the loss), ``sample_queue`` (replay of cached successes).
"""
