"""Typed records that cross module boundaries in the learner: a generation, a turn, a trajectory, a batch.

A :class:`Trajectory` is one episode, stored *token in, token out*: ``token_ids`` is the prompt followed by
every turn's generated tokens and every observation's tokens, appended in order and never re-tokenised.
Three lists run in parallel with it::

    token_ids     [p p p p | g g g g | o o o | g g g ]     p: prompt, g: generated, o: observation
    loss_mask     [0 0 0 0 | 1 1 1 1 | 0 0 0 | 1 1 1 ]     1 exactly on tokens the policy sampled
    old_logprobs  [0 0 0 0 | a b c d | 0 0 0 | e f g ]     log-prob of each sampled token, 0.0 elsewhere

so the loss never trains on prompt or tool-output tokens (the one mask), and the stored log-probs are the
behaviour policy of the importance ratio. :meth:`Trajectory.check` asserts these invariants.

Nothing here imports torch at module level; :class:`TrainBatch` holds tensors built on the CPU by
:meth:`TrainBatch.collate` and moved, all together, to the model's device by :meth:`TrainBatch.to`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

FinishReason = Literal["stop", "eos", "length"]
Source = Literal["online", "cache"]


@dataclass
class Generation:
    """What :meth:`agents.learner.policy.Policy.sample` returns for one sequence.

    Args:
        token_ids: the new tokens, including the EOS or the token that completed a stop string.
        logprobs: log-prob of each new token under the sampling policy (see ``Policy.sample``), same length.
        finish_reason: ``"stop"`` (a stop string), ``"eos"`` (end-of-turn token) or ``"length"``.
        text: ``token_ids`` decoded, special tokens skipped.
    """

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: FinishReason
    text: str


@dataclass
class Turn:
    """One Thought -> Code -> Observation step, as spans into :attr:`Trajectory.token_ids`.

    Args:
        gen_start, gen_end: generated tokens occupy ``token_ids[gen_start:gen_end]``.
        obs_end: the observation tokens (turn close, user turn, next assistant opening) occupy
            ``token_ids[gen_end:obs_end]``; equal to ``gen_end`` on the last turn.
        action: the generated text (the model's thought and code).
        observation: the environment's observation text for this action ("" on the last turn).
        finish_reason: why generation stopped.
        execution_error: the error the sandbox reported for this action's code, if any.
    """

    gen_start: int
    gen_end: int
    obs_end: int
    action: str = ""
    observation: str = ""
    finish_reason: FinishReason = "eos"
    execution_error: str | None = None


@dataclass
class Trajectory:
    """One episode of one task, ready for the loss (see the module docstring for the token layout).

    Args:
        task_id: the task this episode solved (groups and the sample queue key on it).
        group_id: the GRPO group (one prompt, several samples); advantages are normalised within it.
        level: the task's level (0-3), for per-level logging.
        token_ids: prompt + generated + observation tokens, in order.
        loss_mask: 1 on generated tokens, 0 on prompt and observation tokens.
        old_logprobs: behaviour-policy log-prob of each generated token, 0.0 where ``loss_mask`` is 0.
        prompt_len: number of prompt tokens at the start of ``token_ids``.
        reward: scalar outcome reward.
        reward_components: named parts of the reward (correctness, execution, format, ...), for logging.
        infra_error: set when the episode failed for a reason outside the policy's control (judge or
            sandbox outage); such episodes are left out of training, never scored as wrong.
        infra_kind: which part failed (``"judge"``, ``"sandbox"``, ``"web"``, ``"agent"``), with ``infra_error``.
        truncated: the episode hit a turn or token limit before a final answer.
        policy_version: the learner step whose weights sampled the tokens.
        num_turns: number of generated turns.
        final_answer: the answer submitted, if any.
        turns: per-turn spans and texts.
        source: ``"online"`` (sampled this step) or ``"cache"`` (replayed from the sample queue).
        metadata: free-form extra data (never used by the loss).
        behaviour_logprobs: log-probs of the policy that sampled the tokens, kept when ``old_logprobs``
            are recomputed for a replay (``None``: ``old_logprobs`` are the sampler's own).
        context_turns: leading turns kept as context only, out of the loss (a repair demonstration's
            replayed failure: ``agents.learner.repairs``); 0 for every sampled episode.
    """

    task_id: str
    group_id: str
    token_ids: list[int]
    loss_mask: list[int]
    old_logprobs: list[float]
    prompt_len: int
    level: int = 1
    reward: float = 0.0
    reward_components: dict[str, float] = field(default_factory=dict)
    infra_error: str | None = None
    infra_kind: str | None = None
    truncated: bool = False
    policy_version: int = 0
    num_turns: int = 0
    final_answer: str | None = None
    turns: list[Turn] = field(default_factory=list)
    source: Source = "online"
    metadata: dict[str, Any] = field(default_factory=dict)
    behaviour_logprobs: list[float] | None = None
    context_turns: int = 0

    @classmethod
    def start(cls, task_id: str, group_id: str, prompt_ids: Sequence[int], **fields: Any) -> Trajectory:
        """Begin a trajectory holding only the prompt (mask 0, log-probs 0.0)."""
        ids = list(prompt_ids)
        return cls(task_id, group_id, ids, [0] * len(ids), [0.0] * len(ids), len(ids), **fields)

    def append_generated(self, token_ids: Sequence[int], logprobs: Sequence[float]) -> tuple[int, int]:
        """Append sampled tokens (mask 1) with their log-probs; return their ``(start, end)`` span."""
        if len(token_ids) != len(logprobs):
            raise ValueError(f"{len(token_ids)} tokens but {len(logprobs)} log-probs")
        start = len(self.token_ids)
        self.token_ids.extend(int(t) for t in token_ids)
        self.loss_mask.extend([1] * len(token_ids))
        self.old_logprobs.extend(float(x) for x in logprobs)
        return start, len(self.token_ids)

    def append_forced(self, token_ids: Sequence[int]) -> tuple[int, int]:
        """Append tokens the policy did not sample (observations, turn markers): mask 0, log-prob 0.0."""
        start = len(self.token_ids)
        self.token_ids.extend(int(t) for t in token_ids)
        self.loss_mask.extend([0] * len(token_ids))
        self.old_logprobs.extend([0.0] * len(token_ids))
        return start, len(self.token_ids)

    @property
    def num_generated_tokens(self) -> int:
        """Number of tokens the loss trains on."""
        return sum(self.loss_mask)

    @property
    def has_execution_error(self) -> bool:
        """True when any turn's code raised in the sandbox."""
        return any(turn.execution_error for turn in self.turns)

    @property
    def trained_execution_error(self) -> bool:
        """True when a turn the loss trains on (after the ``context_turns``) raised in the sandbox."""
        return any(turn.execution_error for turn in self.turns[self.context_turns:])

    def check(self) -> None:
        """Raise ``ValueError`` if the parallel lists or the prompt/mask layout are inconsistent."""
        n = len(self.token_ids)
        if len(self.loss_mask) != n or len(self.old_logprobs) != n:
            raise ValueError(
                f"trajectory {self.task_id}: {n} tokens, {len(self.loss_mask)} mask, {len(self.old_logprobs)} log-probs"
            )
        if not 0 < self.prompt_len <= n:
            raise ValueError(f"trajectory {self.task_id}: prompt_len {self.prompt_len} outside (0, {n}]")
        if any(self.loss_mask[: self.prompt_len]):
            raise ValueError(f"trajectory {self.task_id}: loss_mask is 1 inside the prompt")
        if any(m not in (0, 1) for m in self.loss_mask):
            raise ValueError(f"trajectory {self.task_id}: loss_mask must hold only 0 and 1")
        if any(lp != 0.0 for lp, m in zip(self.old_logprobs, self.loss_mask, strict=True) if not m):
            raise ValueError(f"trajectory {self.task_id}: non-zero old log-prob where loss_mask is 0")

    def replace(self, **changes: Any) -> Trajectory:
        """Return a shallow copy with some fields changed (lists are copied, so appends do not leak)."""
        copy = dataclasses.replace(self, **changes)
        for name in ("token_ids", "loss_mask", "old_logprobs", "behaviour_logprobs"):
            if name not in changes and getattr(self, name) is not None:
                setattr(copy, name, list(getattr(self, name)))
        return copy

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for checkpoints and the sample queue's state)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["turns"] = [Turn(**t) for t in data.get("turns", [])]
        return cls(**data)


@dataclass
class TrainBatch:
    """Right-padded tensors for one loss evaluation (row ``i`` is trajectory ``i``, column ``t`` token ``t``).

    Args:
        token_ids: ``[B, T]`` long, padded with ``pad_token_id``.
        attention_mask: ``[B, T]`` long, 1 on real tokens.
        loss_mask: ``[B, T]`` float, 1 on generated tokens (0 on padding).
        old_logprobs: ``[B, T]`` float, behaviour log-probs (0 off the mask).
        advantages: ``[B]`` float, one per trajectory (broadcast over its tokens).
        first_position: smallest prompt length in the batch; logits are needed only from there on.
        shared_prefix: length of the token prefix every row shares (at most ``first_position``): the
            prompt of a batch drawn from one group, which the policy then runs only once.
        behaviour_logprobs: ``[B, T]`` float, log-probs of the policy that sampled each token, for the
            truncated importance weight of replayed samples; equal to ``old_logprobs`` for fresh ones.
        host_loss_mask: ``loss_mask`` as built, on the host; :meth:`to` leaves it there, so the positions to
            score are found without reading anything back from the model's device.
    """

    token_ids: torch.Tensor
    attention_mask: torch.Tensor
    loss_mask: torch.Tensor
    old_logprobs: torch.Tensor
    advantages: torch.Tensor
    first_position: int
    shared_prefix: int = 0
    behaviour_logprobs: torch.Tensor | None = None
    host_loss_mask: torch.Tensor | None = None

    @classmethod
    def collate(cls, trajectories: Sequence[Trajectory], advantages: Sequence[float], pad_token_id: int) -> TrainBatch:
        """Pad trajectories on the right into a batch; ``advantages[i]`` belongs to ``trajectories[i]``."""
        import torch

        if len(trajectories) != len(advantages) or not trajectories:
            raise ValueError(f"need one advantage per trajectory, got {len(trajectories)}/{len(advantages)}")
        width = max(len(t.token_ids) for t in trajectories)
        rows = len(trajectories)
        token_ids = torch.full((rows, width), pad_token_id, dtype=torch.long)  # [B, T]
        attention_mask = torch.zeros((rows, width), dtype=torch.long)  # [B, T]
        loss_mask = torch.zeros((rows, width), dtype=torch.float32)  # [B, T]
        old_logprobs = torch.zeros((rows, width), dtype=torch.float32)  # [B, T]
        behaviour = torch.zeros((rows, width), dtype=torch.float32)  # [B, T]
        for i, traj in enumerate(trajectories):
            n = len(traj.token_ids)
            token_ids[i, :n] = torch.tensor(traj.token_ids, dtype=torch.long)
            attention_mask[i, :n] = 1
            loss_mask[i, :n] = torch.tensor(traj.loss_mask, dtype=torch.float32)
            old_logprobs[i, :n] = torch.tensor(traj.old_logprobs, dtype=torch.float32)
            behaviour[i, :n] = torch.tensor(traj.behaviour_logprobs or traj.old_logprobs, dtype=torch.float32)
        first_position = min(t.prompt_len for t in trajectories)
        differs = (token_ids[:, :first_position] != token_ids[:1, :first_position]).any(dim=0)  # [first]
        shared = int(differs.long().argmax()) if bool(differs.any()) else first_position
        return cls(
            token_ids=token_ids,
            attention_mask=attention_mask,
            loss_mask=loss_mask,
            old_logprobs=old_logprobs,
            advantages=torch.tensor([float(a) for a in advantages], dtype=torch.float32),  # [B]
            first_position=first_position,
            shared_prefix=shared,
            behaviour_logprobs=behaviour,
            host_loss_mask=loss_mask,
        )

    def to(self, device: torch.device | str) -> TrainBatch:
        """The same batch with every tensor on ``device`` (the model's: the loss never mixes devices)."""
        return dataclasses.replace(
            self,
            token_ids=self.token_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            loss_mask=self.loss_mask.to(device),
            old_logprobs=self.old_logprobs.to(device),
            advantages=self.advantages.to(device),
            behaviour_logprobs=None if self.behaviour_logprobs is None else self.behaviour_logprobs.to(device),
        )
