"""What the rollout function hands TRL, and the reward function that reads it back.

:func:`to_trl_batch` turns our :class:`~agents.learner.records.Trajectory` records (token in / token out) into
``GRPOTrainer``'s rollout dict, one row per trajectory, in order::

    prompt_ids      token_ids[:prompt_len]                 the rendered opening chat
    completion_ids  token_ids[prompt_len:] (+ closing EOS)  every turn, observations included
    env_mask        loss_mask[prompt_len:] (+ 0)            1 on sampled tokens, 0 on observations and forced prefixes
    logprobs        the sampler's log-probs (0.0 off the mask; NaN on demonstrations, which no policy sampled)

plus our reward and its parts as extra fields, which TRL passes to every reward function by keyword:
``episode_reward`` (None for an infrastructure failure), ``answer_score``, ``exec_success``, ``answered``,
``infra_error``, ``sample_source`` (``"online"`` or ``"cache"``), ``num_turns``, and ``rollout_metrics`` (one dict
for the whole call: queue and throughput counters, logged by :func:`toolr1_reward`).

Closing EOS: TRL counts a completion whose last token is not an end-of-turn token as *truncated* (its
``completions/clipped_ratio`` metric, and ``mask_truncated_completions``). Our turns end at the close of a code
block, so the last turn is closed with the end-of-turn token (env mask 0, never trained) unless the episode was
cut by its token budget, which is then exactly what TRL sees as truncated (an empty completion, a prompt that
used the whole budget, is closed too: TRL needs at least one token).

Log-probs of replayed samples: a cached trajectory carries the log-probs of the policy that sampled it
(``behaviour_logprobs``, else its ``old_logprobs``). TRL uses them only for its vLLM importance-sampling
correction (``use_vllm=True``), which then weights a stale cached token by ``pi_now / pi_sampler``, truncated
or masked at ``vllm_importance_sampling_clip_max``: the truncated importance weight our learner applies. A
demonstration gets NaN, which TRL reads as "no correction" (weight 1), like our learner.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from agents.learner.records import Trajectory

EXTRA_FIELDS = ("episode_reward", "answer_score", "exec_success", "answered", "infra_error", "sample_source",
                "num_turns")


def sampler_logprobs(traj: Trajectory) -> list[float]:
    """Log-probs of the policy that sampled ``traj`` (NaN on the mask for a demonstration, 0.0 off it)."""
    if traj.metadata.get("demonstration"):
        return [math.nan if m else 0.0 for m in traj.loss_mask]
    return list(traj.behaviour_logprobs if traj.behaviour_logprobs is not None else traj.old_logprobs)


def to_trl_batch(trajectories: Sequence[Trajectory], eos_token_ids: Collection[int], close_token_id: int,
                 rollout_metrics: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The ``rollout_func`` return value for ``trajectories`` (see the module docstring)."""
    out: dict[str, Any] = {key: [] for key in ("prompt_ids", "completion_ids", "env_mask", "logprobs", *EXTRA_FIELDS)}
    for traj in trajectories:
        p = traj.prompt_len
        completion, mask, logprobs = traj.token_ids[p:], traj.loss_mask[p:], sampler_logprobs(traj)[p:]
        if not completion or (not traj.metadata.get("token_limit") and completion[-1] not in eos_token_ids):
            completion, mask, logprobs = [*completion, close_token_id], [*mask, 0], [*logprobs, 0.0]
        out["prompt_ids"].append(traj.token_ids[:p])
        out["completion_ids"].append(completion)
        out["env_mask"].append(mask)
        out["logprobs"].append(logprobs)
        parts = traj.reward_components
        out["episode_reward"].append(None if traj.infra_error else float(traj.reward))
        out["answer_score"].append(float(parts.get("answer_score", 0.0)))
        out["exec_success"].append(float(parts.get("exec_success", 0.0)))
        out["answered"].append(float(parts.get("answered", 0.0)))
        out["infra_error"].append(traj.infra_error)
        out["sample_source"].append(traj.source)
        out["num_turns"].append(traj.num_turns)
    out["rollout_metrics"] = dict(rollout_metrics or {})  # not a list: TRL gives every row the same dict
    return out


def toolr1_reward(completions: Sequence[Any], episode_reward: Sequence[float | None], *,
                  answer_score: Sequence[float] = (), exec_success: Sequence[float] = (),
                  answered: Sequence[float] = (), sample_source: Sequence[str] = (),
                  rollout_metrics: Sequence[Mapping[str, float]] = (),
                  log_metric: Callable[[str, float], None] | None = None, **kwargs: Any) -> list[float | None]:
    """The TRL reward function matching :func:`agents.trl.make_rollout_func`: each episode's own env reward.

    ``GRPOTrainer(reward_funcs=[toolr1_reward], rollout_func=...)``. Returns ``episode_reward`` as is: ``None``
    for an episode that failed for infrastructure reasons, which TRL leaves out of its group's baseline and
    gives no advantage (never scored as a wrong answer). With TRL's ``log_metric`` it also logs the reward parts
    (``toolr1/answer_score``...) and the rollout's counters (``toolr1/queue_injected``...).
    """
    if len(episode_reward) != len(completions):
        raise ValueError(f"{len(completions)} completions but {len(episode_reward)} episode rewards: "
                         "toolr1_reward needs the rollout function agents.trl.make_rollout_func")
    if log_metric is not None:
        for name, values in (("answer_score", answer_score), ("exec_success", exec_success), ("answered", answered)):
            if values:
                log_metric(f"toolr1/{name}", sum(values) / len(values))
        if sample_source:
            log_metric("toolr1/from_queue", sum(s == "cache" for s in sample_source) / len(sample_source))
        for name, value in (rollout_metrics[0] if rollout_metrics else {}).items():
            log_metric(f"toolr1/{name}", float(value))
    return [None if r is None else float(r) for r in episode_reward]
