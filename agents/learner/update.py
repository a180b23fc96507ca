"""One GRPO update: groups -> advantages -> several clipped-loss passes with gradient accumulation.

The loss itself lives in :mod:`agents.learner.grpo` (pure functions); this module only batches trajectories,
runs the forward passes through :class:`agents.learner.policy.Policy` and steps the optimiser.

Devices: every batch is moved to the model's device before any arithmetic (:meth:`TrainBatch.to`), and
values are read back to the host only through :func:`host_values` / :func:`host_rows` (one transfer per
micro-batch), so the update runs unchanged on a GPU, and on the ``meta`` device in the tests.

Data parallel (:mod:`agents.learner.data_parallel`): the loss of every process divides by the trained
tokens of the whole batch, and one all-reduce per optimiser step sums a flat buffer of every gradient plus
a non-finite flag and the metric sums, so all processes make the same step (or all skip it).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from agents.learner.data_parallel import DataParallel
from agents.learner.grpo import (
    AdvantageScale,
    LossAggregation,
    group_advantages,
    grpo_loss_terms,
    truncated_importance_weights,
)
from agents.learner.policy import LogprobOutput, Policy
from agents.learner.records import TrainBatch, Trajectory
from agents.learner.reference import AdapterSnapshot
from agents.learner.sample_queue import SampleQueue, is_flat


@dataclass(frozen=True)
class UpdateConfig:
    """Optimisation settings of one update (see ``agents/train_grpo.py`` for their help texts)."""

    epochs: int = 1
    micro_batch_size: int = 4
    clip_low: float = 0.2
    clip_high: float = 0.28
    kl_coef: float = 0.0
    max_grad_norm: float = 1.0
    advantage_scale: AdvantageScale = "std"
    #: ``False``: advantages below 0 become 0, so only the better-than-average episodes of a group are trained
    #: (filtered imitation of the policy's own successes, RAFT/ReST-style); failures push nothing down.
    negative_advantages: bool = True
    zero_signal_tol: float = 1e-6
    #: ``"token"``: the loss is the mean over every trained token of the batch (DAPO); ``"sequence"``: the
    #: mean over episodes of each one's token mean (GRPO as published; an episode a harness re-rendered into
    #: several transitions counts once, :func:`episode_weights`), so a long failure pushes no harder than a
    #: short success pulls (:mod:`agents.learner.grpo`).
    loss_aggregation: LossAggregation = "token"
    mask_truncated: bool = False
    is_weight_cap: float = 1.0
    #: Take the ratio against this forward pass's own detached log-probs instead of ``old_logprobs``: every
    #: ratio is 1 and the gradient is ``advantage x grad log-prob`` (with advantage 1, the NLL's), with no
    #: re-scoring pass first. The supervised warm-up's setting (``agents.learner.warmup``).
    ratio_to_current: bool = False
    #: Most tokens a micro-batch may run (:func:`_prompt_chunks`): groups join up to it, and a group that alone
    #: runs more splits into parts. Bounds the activations of a forward pass (about 1 MiB a token for the
    #: bundled model under bf16 autocast, plus the backward's temporaries).
    micro_batch_tokens: int = 2048


#: :func:`rescore`'s bound on the tokens of a micro-batch joined from several prompts.
MICRO_BATCH_TOKENS = 2048


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient was NaN/inf; the optimiser step was skipped (on every process)."""


def host_values(tensors: Sequence[torch.Tensor]) -> list[float]:
    """The values of 0-dim tensors, copied to the host in one transfer (the update's one sync per micro-batch).

    The tests replace this (and :func:`host_rows`) to run the update on the ``meta`` device, where no value
    can be read but any tensor left on another device raises.
    """
    return torch.stack([t.detach().float().reshape(()) for t in tensors]).tolist()


def host_rows(matrix: torch.Tensor) -> list[list[float]]:
    """A ``[B, T]`` tensor as host lists (one transfer)."""
    return matrix.detach().float().cpu().tolist()


@torch.no_grad()
def rescore(policy: Policy, trajectories: Sequence[Trajectory], batch_size: int = 8) -> None:
    """Set ``old_logprobs`` of each trajectory to the current policy's log-probs (in place).

    Used for replayed queue entries before an update (so the clipped ratio starts at 1 against the
    current policy, instead of being clipped at once against a stale sampler) and for demonstrations,
    whose tokens no policy sampled. A policy-sampled trajectory keeps its sampler's log-probs in
    ``behaviour_logprobs`` (the denominator of the truncated importance weight); a demonstration
    (``metadata["demonstration"]``) has no sampler and keeps none, so its weight is 1.
    """
    was_training = policy.model.training
    policy.model.eval()
    try:
        for chunk in _prompt_chunks(list(trajectories), batch_size, MICRO_BATCH_TOKENS):
            batch = TrainBatch.collate(chunk, [0.0] * len(chunk), policy.pad_token_id).to(policy.device)
            scores = host_rows(rescored_logprobs(policy, batch))  # B lists of T
            for row, traj in enumerate(chunk):
                if traj.behaviour_logprobs is None and not traj.metadata.get("demonstration"):
                    traj.behaviour_logprobs = traj.old_logprobs
                traj.old_logprobs = scores[row][: len(traj.token_ids)]
    finally:
        policy.model.train(was_training)


def rescored_logprobs(policy: Policy, batch: TrainBatch) -> torch.Tensor:
    """``[B, T]`` current log-probs of ``batch`` (on the model's device), 0 off the loss mask."""
    scores = policy.sequence_logprobs(batch.token_ids, batch.attention_mask, first_position=batch.first_position,
                                      shared_prefix=batch.shared_prefix,
                                      score_mask=batch.host_loss_mask).logprobs  # [B, T]
    return scores * batch.loss_mask  # [B, T]


def _prompt_chunks(items: list, size: int, max_tokens: int = 0,
                   row: Callable[[object], Trajectory] = lambda item: item,  # type: ignore[assignment,return-value]
                   key: Callable[[object], object] | None = None) -> list[list]:
    """Split ``items`` into micro-batches of at most ``size`` rows that run in few forward tokens.

    A micro-batch runs as one right-padded batch in which the leading columns every row agrees on run once
    (:meth:`TrainBatch.collate`'s ``shared_prefix``), so it costs ``P + rows * (width - P)`` tokens for a
    shared prefix ``P`` and its longest row ``width``. Rows with the same ``key`` (default: the same prompt;
    the update passes the GRPO group) stay together, ``size`` at a time. Then, in the order of their tokens
    (prompts that share a header side by side), a unit joins the open micro-batch when the rows fit, the
    joint cost stays within ``max_tokens`` (0: no limit) and is no more than the two cost apart. Tasks of one
    world share the prompt's instructions and tool list, so the warm-up's demonstrations (one per task) run
    several to a pass instead of one by one, while a GRPO group keeps its whole prompt shared. A group that
    alone costs more than ``max_tokens`` runs in consecutive parts that fit (its prompt once per part; a row
    longer than the bound runs alone), so the bound holds for the activations of every forward pass.

    ``row`` maps an item to its trajectory (the update passes ``(trajectory, advantage)`` pairs).
    """
    key = key or (lambda item: tuple(row(item).token_ids[: row(item).prompt_len]))
    by_key: dict[object, list] = defaultdict(list)
    for item in items:
        by_key[key(item)].append(item)
    units = [part for members in by_key.values() for i in range(0, len(members), size)
             for part in _within_tokens(members[i: i + size], max_tokens, row)]
    units.sort(key=lambda unit: row(unit[0]).token_ids[: row(unit[0]).prompt_len])
    chunks: list[list] = []
    open_chunk: list = []
    for unit in units:
        if open_chunk and len(open_chunk) + len(unit) <= size:
            joint = _forward_tokens([row(i) for i in open_chunk + unit])
            apart = _forward_tokens([row(i) for i in open_chunk]) + _forward_tokens([row(i) for i in unit])
            if joint <= apart and (max_tokens <= 0 or joint <= max_tokens):
                open_chunk += unit
                continue
        if open_chunk:
            chunks.append(open_chunk)
        open_chunk = list(unit)
    if open_chunk:
        chunks.append(open_chunk)
    return chunks


def _within_tokens(unit: list, max_tokens: int, row: Callable[[object], Trajectory]) -> list[list]:
    """``unit`` in consecutive parts of at least one row whose forward tokens stay within ``max_tokens``."""
    if max_tokens <= 0 or _forward_tokens([row(i) for i in unit]) <= max_tokens:
        return [unit]
    parts: list[list] = [[unit[0]]]
    for item in unit[1:]:
        if _forward_tokens([row(i) for i in [*parts[-1], item]]) <= max_tokens:
            parts[-1].append(item)
        else:
            parts.append([item])
    return parts


def _forward_tokens(trajectories: Sequence[Trajectory]) -> int:
    """Tokens one padded micro-batch of ``trajectories`` runs: the shared prefix once, the rest per row."""
    first = trajectories[0].token_ids
    shared = min(t.prompt_len for t in trajectories)
    for t in trajectories[1:]:
        shared = next((i for i in range(shared) if t.token_ids[i] != first[i]), shared)
    width = max(len(t.token_ids) for t in trajectories)
    return shared + len(trajectories) * (width - shared)


def without_infra_errors(trajectories: Sequence[Trajectory]) -> list[Trajectory]:
    """Drop episodes that failed for reasons outside the policy (judge or sandbox outage): scoring them
    as wrong answers would teach the policy that correct work is bad."""
    return [t for t in trajectories if t.infra_error is None]


def build_groups(trajectories: Sequence[Trajectory], queue: SampleQueue | None, policy_version: int,
                 group_size: int, tol: float) -> tuple[list[Trajectory], dict[str, float]]:
    """Group online trajectories by ``group_id`` and let the sample queue top up or fix flat groups.

    ``trajectories`` must already exclude infra errors. Returns the training batch (online members plus
    injected cached ones) and the share of zero-signal groups before and after the queue.
    """
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        groups[t.group_id].append(t)
    batch: list[Trajectory] = []
    flat_before = flat_after = 0
    for group in groups.values():
        flat_before += is_flat([t.reward for t in group], tol)
        if queue is not None:
            group = queue.fill_group(group, group[0].task_id, policy_version, tol=tol, group_size=group_size)
        flat_after += is_flat([t.reward for t in group], tol)
        batch += group
    count = max(len(groups), 1)
    return batch, {"groups/count": float(len(groups)), "groups/zero_signal_before": flat_before / count,
                   "groups/zero_signal_after": flat_after / count,
                   "batch/from_queue": float(sum(t.source == "cache" for t in batch))}



def compute_advantages(trajectories: Sequence[Trajectory], config: UpdateConfig) -> list[float]:
    """Group-normalised advantages, one per trajectory, grouped by ``group_id``."""
    if not trajectories:
        return []
    advantages = group_advantages([t.reward for t in trajectories], [t.group_id for t in trajectories],
                                  scale=config.advantage_scale, tol=config.zero_signal_tol)  # [N]
    if not config.negative_advantages:
        advantages = advantages.clamp(min=0.0)  # [N]
    return advantages.tolist()


def cut_by_token_budget(traj: Trajectory) -> bool:
    """Whether an unanswered episode ended because a *token* budget ran out: the episode's
    (``metadata["token_limit"]``) or its last turn's (``finish_reason == "length"``).

    Such an episode is no evidence of a wrong answer: it was stopped mid-thought (DAPO's overlong filter).
    An episode that used up its *turns* with finished actions (a print, an error, reading a page again) is
    a complete attempt that did not answer, and keeps its reward and its gradient.
    """
    if not traj.truncated:
        return False
    return bool(traj.metadata.get("token_limit")) or bool(traj.turns and traj.turns[-1].finish_reason == "length")


def trainable(trajectories: Sequence[Trajectory], advantages: Sequence[float],
              config: UpdateConfig) -> list[tuple[Trajectory, float]]:
    """The (trajectory, advantage) pairs that carry gradient.

    Zero-advantage trajectories are dropped when there is no KL term (their loss is exactly 0), and
    episodes cut by a token budget when ``mask_truncated`` (:func:`cut_by_token_budget`; DAPO's overlong
    masking); both still counted in their group's mean and std above.
    """
    pairs = []
    for traj, adv in zip(trajectories, advantages, strict=True):
        if config.mask_truncated and cut_by_token_budget(traj):
            continue
        if adv == 0.0 and config.kl_coef == 0.0:
            continue
        if traj.num_generated_tokens == 0:
            continue
        pairs.append((traj, adv))
    return pairs


def micro_batch_loss(policy: Policy, batch: TrainBatch, config: UpdateConfig, num_tokens: float,
                     reference: AdapterSnapshot | None = None, gap_rows: torch.Tensor | None = None,
                     row_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of one micro-batch (already on the model's device) over the global ``num_tokens`` (with
    ``row_weights [B]``, :func:`episode_weights`: the batch's episodes), and its metric tensors
    (``entropy`` included); reads no value back to the host.

    ``gap_rows`` (``[B]``, 1 on rows whose ``old_logprobs`` are the sampler's of the weights being trained,
    :func:`sampled_by`): also return ``logprob_gap_sum``, ``logprob_gap_max`` and ``logprob_gap_tokens``, the
    sum and max of ``|trainer - sampler|`` over those rows' loss tokens (the trainer's side is this forward).

    The KL term (``config.kl_coef > 0``) is taken to ``reference`` (an adapter snapshot,
    :mod:`agents.learner.reference`) or, without one, to the base model (adapter off). The reference is
    scored before the policy's own forward pass: swapping its weights in after that pass would change
    tensors autograd saved for the backward pass.
    """
    ref = None
    if config.kl_coef > 0:
        with torch.no_grad():
            if reference is not None:
                with reference.swapped_into(policy.trainable_parameters()):
                    ref = _reference_logprobs(policy, batch, use_adapter=True)  # [B, T]
            else:
                ref = _reference_logprobs(policy, batch, use_adapter=False)  # [B, T]
    out: LogprobOutput = policy.sequence_logprobs(batch.token_ids, batch.attention_mask,
                                                  first_position=batch.first_position, with_entropy=True,
                                                  shared_prefix=batch.shared_prefix, score_mask=batch.host_loss_mask)
    weights = None
    if config.is_weight_cap > 0:  # 1 on fresh tokens; < 1 where a replayed sample went stale
        assert batch.behaviour_logprobs is not None
        weights = truncated_importance_weights(batch.old_logprobs, batch.behaviour_logprobs, batch.loss_mask,
                                               config.is_weight_cap)  # [B, T]
    old_logprobs = out.logprobs.detach() if config.ratio_to_current else batch.old_logprobs  # [B, T]
    loss, terms = grpo_loss_terms(out.logprobs, old_logprobs, batch.advantages, batch.loss_mask,
                                  clip_low=config.clip_low, clip_high=config.clip_high, ref_logprobs=ref,
                                  kl_coef=config.kl_coef, behaviour_weights=weights, num_tokens=num_tokens,
                                  row_weights=row_weights)
    assert out.entropy is not None
    terms["entropy"] = (out.entropy * batch.loss_mask).sum() / batch.loss_mask.sum().clamp(min=1)  # scalar
    terms["nll"] = -(out.logprobs.detach() * batch.loss_mask).sum() / batch.loss_mask.sum().clamp(min=1)  # scalar
    if gap_rows is not None:
        compared = batch.loss_mask * gap_rows[:, None]  # [B, T]
        gap = (out.logprobs.detach() - batch.old_logprobs).abs() * compared  # [B, T]
        terms["logprob_gap_sum"], terms["logprob_gap_max"] = gap.sum(), gap.max()  # scalars
        terms["logprob_gap_tokens"] = compared.sum()  # scalar
    return loss, terms


def sampled_by(trajectory: Trajectory, version: int) -> bool:
    """Whether ``trajectory.old_logprobs`` are the log-probs its sampler recorded with the weights of policy
    ``version``: an online episode of that version, neither re-scored (a replay keeps its sampler's in
    ``behaviour_logprobs``) nor a demonstration (no sampler). Only such tokens measure sampler vs trainer."""
    return (trajectory.source == "online" and trajectory.policy_version == version
            and trajectory.behaviour_logprobs is None and not trajectory.metadata.get("demonstration"))


def _reference_logprobs(policy: Policy, batch: TrainBatch, use_adapter: bool) -> torch.Tensor:
    """``[B, T]`` log-probs of ``batch`` under the policy as it is now, adapter on or off."""
    return policy.sequence_logprobs(batch.token_ids, batch.attention_mask, first_position=batch.first_position,
                                    use_adapter=use_adapter, shared_prefix=batch.shared_prefix,
                                    score_mask=batch.host_loss_mask).logprobs  # [B, T]


#: Metrics averaged over the whole batch (weighted by trained tokens, summed across processes); the ratio's
#: min and max are this process's own.
_MEAN_METRICS = ("loss", "pg_loss", "clip_frac_low", "clip_frac_high", "approx_kl", "ratio_mean", "advantage_mean",
                 "entropy", "nll", "kl_ref", "behaviour_weight_mean")


def update_policy(policy: Policy, optimizer: torch.optim.Optimizer, pairs: Sequence[tuple[Trajectory, float]],
                  config: UpdateConfig, *, rng: random.Random | None = None,
                  dp: DataParallel | None = None, reference: AdapterSnapshot | None = None) -> dict[str, float]:
    """Run ``config.epochs`` passes over ``pairs`` (one optimiser step per pass) and return mean metrics.

    ``dp`` (data parallel): ``pairs`` is this process's shard of the batch; the loss divides by the trained
    tokens of all shards and gradients are summed across processes, so every process makes the step one
    process holding the whole batch would make. Every process joins the same collectives whatever its
    shard holds (even nothing).
    ``reference``: the KL reference (:func:`micro_batch_loss`); ``None`` = the base model.
    Raises :class:`NonFiniteLossError` (after zeroing the gradient, on every process) when a loss or
    gradient is not finite anywhere.

    Sampler vs trainer: the first pass scores every micro-batch with the weights of ``policy.version``, before
    any step, so for tokens sampled with those weights (:func:`sampled_by`) its log-probs and the sampler's
    should agree up to numerics. The returned ``rollout/logprob_gap/mean`` and ``/max`` are the mean and max of
    ``|trainer - sampler|`` over those tokens of every process (``/tokens`` counts them; all 0 when there are
    none), measured at no extra forward pass.
    """
    dp = dp or DataParallel()
    params = policy.trainable_parameters()
    local_tokens = float(sum(t.num_generated_tokens for t, _ in pairs))
    weights = episode_weights([t for t, _ in pairs]) if config.loss_aggregation == "sequence" else None
    num_tokens, num_episodes = dp.sum_floats([local_tokens, float(sum(weights.values())) if weights else 0.0])
    denominator = num_episodes if weights is not None else num_tokens
    if num_tokens == 0:
        return {"update/skipped": 1.0, **_gap_metrics(dp, 0.0, 0.0, 0.0)}
    rng = rng or random.Random(0)
    keys = [k for k in _MEAN_METRICS if (k != "kl_ref" or config.kl_coef > 0)
            and (k != "behaviour_weight_mean" or config.is_weight_cap > 0)]
    summary: dict[str, float] = defaultdict(float)
    policy.model.train()
    gap_sum = gap_max = gap_tokens = 0.0  # this process's, over the first pass
    for epoch in range(config.epochs):
        order = list(pairs)
        rng.shuffle(order)
        optimizer.zero_grad(set_to_none=True)
        sums = dict.fromkeys(keys, 0.0)  # token-weighted sums over this process's micro-batches
        low, high, non_finite = float("inf"), float("-inf"), 0.0
        # One optimiser step per pass, so the order of micro-batches does not change the gradient:
        # a group stays in one micro-batch and its prompt runs once; prompts share their header.
        for chunk in _prompt_chunks(order, config.micro_batch_size, config.micro_batch_tokens,
                                    row=lambda pair: pair[0], key=lambda pair: pair[0].group_id):
            batch = TrainBatch.collate([t for t, _ in chunk], [a for _, a in chunk], policy.pad_token_id)
            gap_rows = torch.tensor([float(sampled_by(t, policy.version)) for t, _ in chunk]) if epoch == 0 else None
            rows = None if weights is None else torch.tensor([weights[id(t)] / max(t.num_generated_tokens, 1)
                                                              for t, _ in chunk], device=policy.device)  # [B]
            loss, terms = micro_batch_loss(policy, batch.to(policy.device), config, denominator, reference,
                                           None if gap_rows is None else gap_rows.to(policy.device), rows)
            names = list(terms)
            values = dict(zip(["loss", *names], host_values([loss, *terms.values()]), strict=True))
            if not math.isfinite(values["loss"]):
                non_finite = 1.0  # stop here; the flag reaches every process with the gradients
                break
            loss.backward()
            tokens = values["num_tokens"]
            for key in keys:
                sums[key] += values[key] * (tokens if key != "loss" else 1.0)
            low, high = min(low, values["ratio_min"]), max(high, values["ratio_max"])
            if gap_rows is not None:
                gap_sum += values["logprob_gap_sum"]
                gap_max = max(gap_max, values["logprob_gap_max"])
                gap_tokens += values["logprob_gap_tokens"]
        flat = _flat_gradients(params)  # [P]
        extras = torch.tensor([non_finite, *sums.values()], dtype=flat.dtype, device=flat.device)  # [1 + M]
        reduced = dp.all_sum_(torch.cat([flat, extras]))  # [P + 1 + M]
        failed = int(host_values([reduced[flat.numel()]])[0])
        if failed:
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(f"non-finite loss in the batch of {failed} of {dp.world_size} process(es); "
                                     "the update was skipped")
        _set_gradients(params, reduced[: flat.numel()])
        grad_norm = host_values([torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)])[0]
        if not math.isfinite(grad_norm):
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(f"non-finite gradient norm {grad_norm}; the update was skipped")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        global_sums = host_values(list(reduced[flat.numel() + 1 :]))
        for key, value in zip(keys, global_sums, strict=True):
            summary[f"update/{key}"] += (value if key == "loss" else value / num_tokens) / config.epochs
        summary["update/grad_norm"] += grad_norm / config.epochs
        summary["update/ratio_min"] += (low if math.isfinite(low) else 1.0) / config.epochs
        summary["update/ratio_max"] += (high if math.isfinite(high) else 1.0) / config.epochs
    summary.update(_gap_metrics(dp, gap_sum, gap_max, gap_tokens))
    summary["update/num_tokens"] = num_tokens
    summary["update/num_tokens_local"] = local_tokens
    summary["update/trajectories"] = float(len(pairs))
    return dict(summary)


def episode_weights(trajectories: Sequence[Trajectory]) -> dict[int, float]:
    """``id(trajectory)`` -> its share of its episode's trained tokens, for ``loss_aggregation="sequence"``.

    A trajectory is one episode, unless it is one of several transitions of an episode a harness re-rendered
    (the recording proxy's, ``metadata["episode_id"]``): then its row's token mean is weighted by its share of
    the episode's tokens, so every episode counts once, whatever its length and its number of transitions.
    The shares of one episode sum to 1; their total is the number of episodes.
    """
    def episode(traj: Trajectory) -> object:
        return traj.metadata.get("episode_id") or id(traj)

    tokens: dict[object, float] = defaultdict(float)
    for traj in trajectories:
        tokens[episode(traj)] += traj.num_generated_tokens
    return {id(traj): traj.num_generated_tokens / tokens[episode(traj)] if tokens[episode(traj)] else 0.0
            for traj in trajectories}


def _gap_metrics(dp: DataParallel, gap_sum: float, gap_max: float, gap_tokens: float) -> dict[str, float]:
    """Every process's sampler-vs-trainer gap sums combined (one gather): mean, max and token count."""
    gathered = dp.gather_objects((gap_sum, gap_max, gap_tokens))
    total, tokens = sum(g[0] for g in gathered), sum(g[2] for g in gathered)
    return {"rollout/logprob_gap/mean": total / tokens if tokens else 0.0,
            "rollout/logprob_gap/max": max(g[1] for g in gathered),
            "rollout/logprob_gap/tokens": tokens}


def _flat_gradients(params: Sequence[torch.nn.Parameter]) -> torch.Tensor:
    """Every parameter's gradient in one fp32 vector (zeros where a parameter has none): ``[P]``."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().float().reshape(-1)
                      for p in params])


def _set_gradients(params: Sequence[torch.nn.Parameter], flat: torch.Tensor) -> None:
    """Write the slices of ``flat [P]`` back as the parameters' gradients."""
    offset = 0
    for p in params:
        p.grad = flat[offset : offset + p.numel()].view_as(p).to(p.dtype)
        offset += p.numel()
