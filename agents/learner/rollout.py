"""Multi-turn rollouts of a policy: one batched generation per turn, token in / token out.

An :class:`~agents.engine.EpisodeRequest` asks for one episode of one task in one GRPO group.
:func:`collect` plays a list of them with a :class:`PolicyPlayer` through the one episode engine
(:func:`agents.engine.play_episodes`: every env slot kept busy, every episode's code run at once): at
each turn the policy samples one batch for all live episodes, and each observation is appended as token
ids from ``Policy.encode_observation`` (mask 0: observation tokens stay in the attention, out of the loss).

An episode whose tokens would exceed ``max_episode_tokens`` is cut (``truncated``, reward 0, and
``metadata["token_limit"]``): the environment never saw an answer, so there is no end reward to give.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from agents.engine import Ending, EngineStats, EpisodeRequest, Halt, play_episodes
from agents.learner.policy import Policy
from agents.learner.records import Generation, Trajectory, Turn
from toolr1_env.vector import StepOutcome, ThreadVectorEnv


@dataclass
class RolloutStats:
    """Counters of one :func:`collect` call, for logs (tokens/s, env steps/s)."""

    episodes: int = 0
    env_steps: int = 0
    generated_tokens: int = 0
    generation_seconds: float = 0.0
    env_seconds: float = 0.0
    wall_seconds: float = 0.0
    reused_prompt_tokens: int = 0  # prompt tokens taken from earlier turns' keys and values, not prefilled
    extra: dict[str, float] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, float]:
        """Flat metrics for the logger."""
        return {
            "rollout/episodes": self.episodes, "rollout/env_steps": self.env_steps,
            "rollout/generated_tokens": self.generated_tokens,
            "rollout/tokens_per_s": self.generated_tokens / max(self.generation_seconds, 1e-9),
            "rollout/env_steps_per_s": self.env_steps / max(self.env_seconds, 1e-9),
            "rollout/wall_s": self.wall_seconds,
            "rollout/reused_prompt_tokens": self.reused_prompt_tokens,
        }


def build_prompt(policy: Policy, observation: str, system_prompt: str | None) -> list[int]:
    """Token ids of the opening chat: optional system message, then the env's task prompt as user turn."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
    return policy.encode_prompt([*messages, {"role": "user", "content": observation}])


@dataclass(frozen=True)
class Conversation:
    """How a policy talks in an episode; a trained adapter must be played with its run's conversation.

    Args:
        system_prompt: optional system message before the task prompt.
        response_prefix: text forced at the start of every assistant turn (prompt tokens, mask 0) and
            prepended to the action the env receives; e.g. ``"```py\n"`` makes a small model write code.
        max_new_tokens: tokens generated per turn, at most.
        max_episode_tokens: token budget of a whole episode, prompt included; an episode that would
            exceed it is cut (``Halt("token_limit")``).
    """

    system_prompt: str | None = None
    response_prefix: str = ""
    max_new_tokens: int = 384
    max_episode_tokens: int = 2048

    @classmethod
    def from_run_args(cls, args: Mapping[str, Any]) -> Conversation:
        """The conversation a training run used (its ``args.json``); defaults for missing keys."""
        base = cls()
        return cls(system_prompt=args.get("system_prompt") or None,
                   response_prefix=args.get("response_prefix") or "",
                   max_new_tokens=int(args.get("max_new_tokens") or base.max_new_tokens),
                   max_episode_tokens=int(args.get("max_episode_tokens") or base.max_episode_tokens))


@dataclass
class _Episode:
    traj: Trajectory
    script: Sequence[str] | None = None


class PolicyPlayer:
    """A :class:`~agents.engine.Player` that samples from a :class:`Policy`, token in / token out.

    Each live episode is a :class:`Trajectory`; every turn is one batched ``Policy.sample`` over all
    live episodes, each observation is appended as ``Policy.encode_observation`` ids (mask 0), and an
    episode whose tokens would exceed ``conversation.max_episode_tokens`` is halted (``"token_limit"``).
    :class:`~agents.players.local_agent.LocalAgent` plays evaluation episodes with this same class, so an
    evaluated adapter sees exactly the token layout it was trained on.

    Args:
        policy: the model.
        conversation: system prompt, response prefix and token budgets.
        temperature: overrides the policy's sampling temperature (0 = greedy).
        generator: the sampling RNG.
        scripts: one list of turn texts per request (by request index): replaces sampling with the given
            texts, to record demonstrations; their log-probs are 0.0 until :func:`agents.learner.update.rescore`.
    """

    def __init__(self, policy: Policy, conversation: Conversation, *, temperature: float | None = None,
                 generator: torch.Generator | None = None, scripts: Sequence[Sequence[str]] | None = None) -> None:
        self.policy = policy
        self.conversation = conversation
        self.temperature = temperature
        self.generator = generator
        self.scripts = scripts
        self.stats = RolloutStats()
        if conversation.system_prompt:  # the template's round trip with this system message (once per policy)
            policy.check_conversation(conversation.system_prompt)
        self._prefix_ids = policy.tokenize(conversation.response_prefix) if conversation.response_prefix else []

    def open(self, task_prompt: str, task_id: str = "", group_id: str = "", level: int = 1) -> Trajectory:
        """A trajectory holding the rendered opening chat of ``task_prompt``."""
        prompt = build_prompt(self.policy, task_prompt, self.conversation.system_prompt)
        return Trajectory.start(task_id, group_id, prompt, level=level, policy_version=self.policy.version)

    def begin(self, slot: int, index: int, request: EpisodeRequest, observation: str,
              info: Mapping[str, Any]) -> _Episode:
        """Open the trajectory of a new episode (engine hook)."""
        traj = self.open(observation, request.task_id, request.group_id, int(info.get("level", 1)))
        return _Episode(traj, None if self.scripts is None else self.scripts[index])

    def failed(self, request: EpisodeRequest, error: Exception) -> _Episode:  # pragma: no cover - never raises
        """Unused: :meth:`begin` never raises an agent error."""
        raise error

    def generate(self, trajs: Mapping[int, Trajectory],
                 scripts: Mapping[int, Sequence[str] | None] | None = None) -> dict[int, str | Halt]:
        """Append the response prefix and one generated turn to every trajectory; return the actions.

        A trajectory whose budget runs out is cut (``_finish_cut``) and gets ``Halt("token_limit")``.
        """
        order = sorted(trajs)
        for i in order:
            trajs[i].append_forced(self._prefix_ids)
        limit = self.conversation.max_episode_tokens
        budget = [limit - len(trajs[i].token_ids) for i in order]
        t0 = time.perf_counter()
        if scripts is not None and any(scripts.get(i) is not None for i in order):
            generations = [_scripted(self.policy, scripts[i] or (), trajs[i].num_turns) for i in order]
        else:
            generations = self.policy.sample(
                [trajs[i].token_ids for i in order],
                max_new_tokens=max(1, min(self.conversation.max_new_tokens, max(budget))),
                temperature=self.temperature, generator=self.generator, prefix_text=self.conversation.response_prefix)
        self.stats.generation_seconds += time.perf_counter() - t0
        actions: dict[int, str | Halt] = {}
        for i, generation, room in zip(order, generations, budget, strict=True):
            traj = trajs[i]
            ids, lps = generation.token_ids[: max(room, 0)], generation.logprobs[: max(room, 0)]
            self.stats.generated_tokens += len(ids)
            start, end = traj.append_generated(ids, lps)
            text = generation.text if len(ids) == len(generation.token_ids) else \
                self.policy.decode_text(ids)
            action = self.conversation.response_prefix + text
            traj.turns.append(Turn(start, end, end, action=action, finish_reason=generation.finish_reason))
            traj.num_turns += 1
            if room <= len(generation.token_ids):
                _finish_cut(traj)
                actions[i] = Halt("token_limit")
            else:
                actions[i] = action
        return actions

    def append_observation(self, traj: Trajectory, observation: str) -> None:
        """Append an observation turn (mask 0) after the last generated turn."""
        turn = traj.turns[-1]
        turn.observation = observation
        obs_ids = self.policy.encode_observation(observation, ended_with_eos=turn.finish_reason == "eos")
        _, turn.obs_end = traj.append_forced(obs_ids)

    def act(self, live: Mapping[int, _Episode]) -> dict[int, str | Halt]:
        """One batched generation for every live episode (engine hook)."""
        return self.generate({i: e.traj for i, e in live.items()},
                             None if self.scripts is None else {i: e.script for i, e in live.items()})

    def observe(self, episode: _Episode, action: str, outcome: StepOutcome) -> None:
        """Record the step's execution error; append the observation unless the episode ended (engine hook)."""
        episode.traj.turns[-1].execution_error = outcome.info.get("error_type")
        if not outcome.done:
            self.append_observation(episode.traj, outcome.observation)

    def finish(self, episode: _Episode, ending: Ending) -> None:
        """Fill the trajectory's outcome (engine hook); a token-limit cut was filled by :meth:`generate`."""
        if ending.halt is not None:
            return
        _finish(episode.traj, ending)


def collect(policy: Policy, envs: ThreadVectorEnv, requests: Sequence[EpisodeRequest], *,
            max_episode_tokens: int = 2048, system_prompt: str | None = None, temperature: float | None = None,
            response_prefix: str = "", generator: torch.Generator | None = None,
            scripts: Sequence[Sequence[str]] | None = None, on_round: Callable[[int, int], None] | None = None
            ) -> tuple[list[Trajectory], RolloutStats]:
    """Play every request to the end through :func:`agents.engine.play_episodes`; one trajectory per request.

    ``temperature`` overrides the policy's sampling temperature (0 = greedy, for evaluation);
    ``response_prefix``, ``system_prompt`` and ``max_episode_tokens`` make the :class:`Conversation`
    (tokens per turn: ``policy.config.max_new_tokens``); ``scripts`` see :class:`PolicyPlayer`; ``on_round``
    see :func:`agents.engine.play_episodes` (progress reports).
    """
    conversation = Conversation(system_prompt or None, response_prefix, policy.config.max_new_tokens,
                                max_episode_tokens)
    player = PolicyPlayer(policy, conversation, temperature=temperature, generator=generator, scripts=scripts)
    engine = EngineStats()
    with policy.reusing_turns() as turns:  # the weights stay fixed while episodes play
        episodes = play_episodes(player, envs, requests, stats=engine, on_round=on_round)
    player.stats.reused_prompt_tokens = turns.reused_tokens
    stats = player.stats
    stats.episodes, stats.env_steps = engine.episodes, engine.env_steps
    stats.env_seconds, stats.wall_seconds = engine.env_seconds, engine.wall_seconds
    return [e.traj for e in episodes], stats


def _scripted(policy: Policy, turns: Sequence[str], turn: int) -> Generation:
    text = turns[turn] if turn < len(turns) else ""
    ids = policy.tokenize(text)
    return Generation(ids, [0.0] * len(ids), "stop", text)


def _finish(traj: Trajectory, ending: Ending) -> None:
    info = ending.info
    components = info.get("reward_components", {})
    traj.reward = float(ending.reward)
    traj.truncated = bool(ending.truncated)
    traj.reward_components = {k: float(v) for k, v in components.items() if isinstance(v, (int, float))}
    traj.infra_error = ending.infra_error
    traj.infra_kind = ending.infra_kind
    traj.final_answer = info.get("final_answer")
    traj.metadata["ground_truth"] = info.get("ground_truth")
    traj.check()


def _finish_cut(traj: Trajectory) -> None:
    traj.reward = 0.0
    traj.truncated = True
    traj.reward_components = {"answer_score": 0.0, "exec_success": 0.0, "answered": 0.0}
    traj.metadata["token_limit"] = True
    traj.check()
