"""Multi-turn rollouts: many episodes at once, one batched generation per turn, token in / token out.

An :class:`EpisodeRequest` asks for one episode of one task in one GRPO group. :func:`collect` runs a list
of them through a :class:`toolr1_env.vector.ThreadVectorEnv`, keeping every env slot busy: at each turn
the policy samples one batch for all live episodes, every episode's code then runs concurrently in its
own sandbox (``step_live``), and each observation is appended as token ids from
``Policy.encode_observation`` (mask 0: observation tokens stay in the attention, out of the loss). When
an episode ends its slot takes the next request at once.

An episode whose tokens would exceed ``max_episode_tokens`` is cut (``truncated``, reward 0, and
``metadata["token_limit"]``): the environment never saw an answer, so there is no end reward to give.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from agents.policy import Policy
from agents.records import Generation, Trajectory, Turn
from toolr1_env.tasks import Task
from toolr1_env.vector import ThreadVectorEnv


@dataclass(frozen=True)
class EpisodeRequest:
    """One episode to play: which task, which group it belongs to, and the env seed.

    ``task`` (optional) is the task itself, for tasks outside the envs' own task set (an evaluation split
    played in the training envs); otherwise the envs look ``task_id`` up in their task set.
    """

    task_id: str
    group_id: str
    seed: int | None = None
    task: Task | None = None


@dataclass
class RolloutStats:
    """Counters of one :func:`collect` call, for logs (tokens/s, env steps/s)."""

    episodes: int = 0
    env_steps: int = 0
    generated_tokens: int = 0
    generation_seconds: float = 0.0
    env_seconds: float = 0.0
    wall_seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, float]:
        """Flat metrics for the logger."""
        return {
            "rollout/episodes": self.episodes, "rollout/env_steps": self.env_steps,
            "rollout/generated_tokens": self.generated_tokens,
            "rollout/tokens_per_s": self.generated_tokens / max(self.generation_seconds, 1e-9),
            "rollout/env_steps_per_s": self.env_steps / max(self.env_seconds, 1e-9),
            "rollout/wall_s": self.wall_seconds,
        }


def build_prompt(policy: Policy, observation: str, system_prompt: str | None) -> list[int]:
    """Token ids of the opening chat: optional system message, then the env's task prompt as user turn."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
    return policy.encode_prompt([*messages, {"role": "user", "content": observation}])


def collect(policy: Policy, envs: ThreadVectorEnv, requests: Sequence[EpisodeRequest], *,
            max_episode_tokens: int = 2048, system_prompt: str | None = None, temperature: float | None = None,
            response_prefix: str = "", generator: torch.Generator | None = None,
            scripts: Sequence[Sequence[str]] | None = None) -> tuple[list[Trajectory], RolloutStats]:
    """Play every request to the end and return one trajectory per request (in request order).

    ``temperature`` overrides the policy's sampling temperature (0 = greedy, for evaluation).
    ``response_prefix`` is forced at the start of every assistant turn (prompt tokens, mask 0) and
    prepended to the action the env receives; e.g. ``"```py\n"`` makes a small model write code at once.
    ``scripts`` (one list of turn texts per request) replaces sampling with the given texts, to record
    demonstrations (reference solutions); their log-probs are 0.0 until :func:`agents.update.rescore`.
    """
    prefix_ids = policy.tokenize(response_prefix) if response_prefix else []
    stats = RolloutStats()
    started = time.perf_counter()
    pending = list(enumerate(requests))[::-1]  # pop() from the end keeps request order
    slots: dict[int, tuple[int, Trajectory]] = {}  # env index -> (request index, trajectory)
    finished: dict[int, Trajectory] = {}

    def fill_free_slots() -> None:
        free = [i for i in range(envs.num_envs) if i not in slots][: len(pending)]
        if not free:
            return
        chosen = [pending.pop() for _ in free]
        t0 = time.perf_counter()
        resets = envs.reset_some(free, seeds=[r.seed for _, r in chosen],
                                 options=[{"task": r.task} if r.task else {"task_id": r.task_id} for _, r in chosen])
        stats.env_seconds += time.perf_counter() - t0
        for env_index, (request_index, request) in zip(free, chosen, strict=True):
            observation, info = resets[env_index]
            prompt = build_prompt(policy, observation, system_prompt)
            traj = Trajectory.start(request.task_id, request.group_id, prompt, level=int(info.get("level", 1)),
                                    policy_version=policy.version)
            slots[env_index] = (request_index, traj)

    fill_free_slots()
    while slots:
        order = sorted(slots)
        for i in order:
            slots[i][1].append_forced(prefix_ids)
        budget = [max_episode_tokens - len(slots[i][1].token_ids) for i in order]
        t0 = time.perf_counter()
        if scripts is not None:
            generations = [_scripted(policy, scripts[slots[i][0]], slots[i][1].num_turns) for i in order]
        else:
            generations = policy.sample([slots[i][1].token_ids for i in order],
                                        max_new_tokens=max(1, min(policy.config.max_new_tokens, max(budget))),
                                        temperature=temperature, generator=generator, prefix_text=response_prefix)
        stats.generation_seconds += time.perf_counter() - t0
        actions: dict[int, str] = {}
        for env_index, generation, room in zip(order, generations, budget, strict=True):
            traj = slots[env_index][1]
            ids, lps = generation.token_ids[: max(room, 0)], generation.logprobs[: max(room, 0)]
            stats.generated_tokens += len(ids)
            start, end = traj.append_generated(ids, lps)
            action = response_prefix + generation.text
            traj.turns.append(Turn(start, end, end, action=action, finish_reason=generation.finish_reason))
            traj.num_turns += 1
            if room <= len(generation.token_ids):
                _finish_cut(traj)
                finished[slots.pop(env_index)[0]] = traj
                envs.abandon(env_index)
            else:
                actions[env_index] = action
        t0 = time.perf_counter()
        outcomes = envs.step_live(actions) if actions else {}
        stats.env_seconds += time.perf_counter() - t0
        stats.env_steps += len(outcomes)
        for env_index, outcome in outcomes.items():
            request_index, traj = slots[env_index]
            turn = traj.turns[-1]
            turn.execution_error = outcome.info.get("error_type")
            if outcome.done:
                _finish(traj, outcome.reward, outcome.truncated, outcome.info)
                finished[request_index] = traj
                del slots[env_index]
                continue
            turn.observation = outcome.observation
            obs_ids = policy.encode_observation(outcome.observation, ended_with_eos=turn.finish_reason == "eos")
            _, turn.obs_end = traj.append_forced(obs_ids)
        fill_free_slots()
    stats.episodes = len(finished)
    stats.wall_seconds = time.perf_counter() - started
    return [finished[i] for i in range(len(requests))], stats


def _scripted(policy: Policy, turns: Sequence[str], turn: int) -> Generation:
    text = turns[turn] if turn < len(turns) else ""
    ids = policy.tokenize(text)
    return Generation(ids, [0.0] * len(ids), "stop", text)


def _finish(traj: Trajectory, reward: float, truncated: bool, info: dict[str, Any]) -> None:
    components = info.get("reward_components", {})
    traj.reward = float(reward)
    traj.truncated = bool(truncated)
    traj.reward_components = {k: float(v) for k, v in components.items() if isinstance(v, (int, float))}
    traj.infra_error = info.get("infra_error")
    traj.final_answer = info.get("final_answer")
    traj.metadata["ground_truth"] = info.get("ground_truth")
    traj.check()


def _finish_cut(traj: Trajectory) -> None:
    traj.reward = 0.0
    traj.truncated = True
    traj.reward_components = {"answer_score": 0.0, "exec_success": 0.0, "answered": 0.0}
    traj.metadata["token_limit"] = True
    traj.check()
