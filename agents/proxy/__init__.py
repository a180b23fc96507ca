"""A recording proxy for harness RL: train any agent that talks to an OpenAI-compatible server.

An agent with its own loop and prompts (smolagents' ``CodeAgent``, a user's harness) is pointed at a
per-episode base URL served by the learner's :class:`~agents.learner.policy.Policy`. Every call's exact
prompt and completion token ids and the sampler's log-probs are recorded under the episode; when the
episode ends, the environment's scorer pays it and its calls become GRPO training samples.

* :mod:`agents.proxy.recorder`: episodes and their recorded calls.
* :mod:`agents.proxy.backend`: request validation, token-in/token-out prompts, recording.
* :mod:`agents.proxy.batcher`: one sampling thread; concurrent calls share a batch.
* :mod:`agents.proxy.server`: the OpenAI-compatible HTTP endpoint (plain and streamed).
* :mod:`agents.proxy.transitions`: calls -> merged sequences or separate transitions; episode advantages.
* :mod:`agents.proxy.harness`: play harnesses through the proxy, scored by the env.
* :mod:`agents.proxy.smolagents_harness` and :mod:`agents.proxy.train`: smolagents' ``CodeAgent`` trained.
"""
