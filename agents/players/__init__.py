"""Players: anything that turns observations into actions (the agent interface and its implementations).

``api`` (the :class:`Agent` / :class:`BatchAgent` protocols, :class:`AgentBatch`, :class:`AgentError`),
``scripted`` (replayed actions, the bundled reference solutions), ``openai_agent`` (any OpenAI-compatible
server), ``local_agent`` (a local model with a trained adapter, as the learner plays it).
"""
