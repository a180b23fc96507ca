"""The agent interface: anything that turns observations into actions can be evaluated on ToolR1-GAIA-v0.

Two protocols, one for writing an agent and one for running many episodes at once:

* :class:`Agent`: one episode at a time, keeping its own chat history. ``reset(task_prompt)`` starts an
  episode; ``act(observation)`` returns the next action text (a whole completion: thought plus a
  ```` ```py ```` block, or raw Python). The first ``act`` of an episode receives the env's reset
  observation, which *is* the task prompt (already in the history, so it is not added twice); every later
  ``act`` receives the observation of the previous action. ``usage`` counts this episode's tokens.
* :class:`BatchAgent`: ``K`` episode slots advanced together, so a model can generate for all live
  episodes in one batched call. ``reset_slot(slot, task_prompt)`` starts an episode in a slot;
  ``act_batch({slot: observation})`` returns ``{slot: action}`` for exactly those slots, the shape of
  :meth:`toolr1_env.vector.ThreadVectorEnv.step_live`. A slot whose agent failed for reasons outside the
  policy (a server unreachable after retries, a wrong model name) gets an :class:`AgentError` *value*
  instead of an action, so one failing episode neither crashes nor stalls the others; the evaluation
  counts it as an infrastructure error, apart from accuracy.

:class:`AgentBatch` adapts a list of :class:`Agent` (one per slot) into a :class:`BatchAgent`, calling
their ``act`` concurrently from threads (``K`` requests in flight for remote agents).

Agents that need no model live in :mod:`agents.players.scripted`; model-backed ones in
:mod:`agents.players.openai_agent` and :mod:`agents.players.local_agent`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class AgentError(RuntimeError):
    """The agent could not produce an action for a reason outside the policy's control.

    Examples: the model server is unreachable after retries, or rejects the model name. An episode that
    ends this way is an infrastructure error: reported apart, never scored as a wrong answer.
    """


@dataclass
class Usage:
    """What one episode cost an agent.

    Args:
        prompt_tokens: tokens sent to the model, summed over calls (each call resends the history).
        completion_tokens: tokens the model generated, summed over calls.
        calls: model calls that returned a completion.
        retries: extra attempts after transient failures (connection errors, timeouts, 429, 5xx).
        empty_completions: completions with no text (each became an empty action: a format error).
        context_full: the episode ran out of context budget (local models; later actions are empty).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    retries: int = 0
    empty_completions: int = 0
    context_full: bool = False

    def to_dict(self) -> dict[str, int | bool]:
        """A JSON-serialisable copy."""
        return dataclasses.asdict(self)


@runtime_checkable
class Agent(Protocol):
    """One episode at a time; the agent keeps its own history (see the module docstring)."""

    usage: Usage

    def reset(self, task_prompt: str) -> None:
        """Start an episode whose first user message is ``task_prompt`` (resets ``usage``)."""
        ...

    def act(self, observation: str) -> str:
        """Return the next action for the latest observation (the task prompt on the first call)."""
        ...


@runtime_checkable
class BatchAgent(Protocol):
    """Several episode slots advanced together (see the module docstring)."""

    def reset_slot(self, slot: int, task_prompt: str) -> None:
        """Start an episode in ``slot``."""
        ...

    def act_batch(self, observations: Mapping[int, str]) -> dict[int, str | AgentError]:
        """Return an action, or the :class:`AgentError` that prevented one, for every slot given."""
        ...

    def usage(self, slot: int) -> Usage:
        """The usage of the episode now in ``slot``."""
        ...

    def close(self) -> None:
        """Release threads, clients or models."""
        ...


class AgentBatch:
    """Adapt one :class:`Agent` per slot into a :class:`BatchAgent`; ``act`` calls run concurrently.

    Args:
        agents: slot ``i`` is played by ``agents[i]`` (use distinct objects: each keeps a history).
        threads: run the agents' ``act`` calls from a thread pool (default); False runs them in turn.

    Exceptions other than :class:`AgentError` are bugs and propagate.
    """

    def __init__(self, agents: Sequence[Agent], threads: bool = True) -> None:
        if not agents:
            raise ValueError("AgentBatch needs at least one agent")
        if len({id(a) for a in agents}) != len(agents):
            raise ValueError("AgentBatch needs a distinct agent object per slot (each keeps its own history)")
        self.agents = list(agents)
        self._pool = ThreadPoolExecutor(len(agents), thread_name_prefix="toolr1-agent") if threads else None

    @property
    def num_slots(self) -> int:
        """How many episodes can be in flight."""
        return len(self.agents)

    def reset_slot(self, slot: int, task_prompt: str) -> None:
        """Start an episode in ``slot``."""
        self.agents[slot].reset(task_prompt)

    def act_batch(self, observations: Mapping[int, str]) -> dict[int, str | AgentError]:
        """Call every given slot's agent (concurrently when ``threads``); failures become values."""

        def one(slot: int) -> str | AgentError:
            try:
                return self.agents[slot].act(observations[slot])
            except AgentError as exc:
                return exc

        if self._pool is None:
            return {slot: one(slot) for slot in observations}
        futures = {slot: self._pool.submit(one, slot) for slot in observations}
        return {slot: future.result() for slot, future in futures.items()}

    def usage(self, slot: int) -> Usage:
        """The usage of the episode now in ``slot`` (zeros for an agent that keeps no ``usage``)."""
        return getattr(self.agents[slot], "usage", None) or Usage()

    def close(self) -> None:
        """Stop the thread pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
