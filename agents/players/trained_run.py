"""A training run as players read it: where its adapter is, and the conversation it was trained with.

A policy plays best, and is only measured fairly, in the conversation it was trained in: the same
system prompt (or none), the raw observation as the user turn, the same forced response prefix, the
same per-turn and per-episode token budgets, the same task prompt style and observation cap, and the
same numerics (bfloat16 autocast when the run used it).
:class:`TrainedRun` reads all of them from the run's ``args.json`` so that
:class:`~agents.players.local_agent.LocalAgent`, :meth:`~agents.players.openai_agent.OpenAIAgent.for_run`
and ``agents/evaluate.py`` never substitute their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.learner.checkpointing import resolve_adapter
from agents.learner.rollout import Conversation


@dataclass(frozen=True)
class TrainedRun:
    """A trained adapter and the settings of the run that trained it.

    Args:
        adapter_dir: the folder holding ``adapter_config.json``.
        args: the run's ``args.json`` (``{}`` when absent: then every setting has its default).
    """

    adapter_dir: Path
    args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> TrainedRun:
        """Read a run, checkpoint or adapter folder (see :func:`resolve_adapter`)."""
        return cls(*resolve_adapter(path))

    @property
    def conversation(self) -> Conversation:
        """System prompt, response prefix and token budgets of the run."""
        return Conversation.from_run_args(self.args)

    @property
    def base_model(self) -> str | None:
        """The base model the adapter belongs to (None when the run did not record it)."""
        return self.args.get("model") or None

    @property
    def bf16(self) -> bool:
        """Whether the run sampled and trained under bfloat16 autocast (its adapter is then played so too)."""
        return bool(self.args.get("bf16", False))

    @property
    def dtype(self) -> str:
        """The dtype of the run's model weights (``float32`` or ``bfloat16``; runs that did not record it: float32)."""
        return str(self.args.get("dtype") or "float32")

    @property
    def prompt_style(self) -> str:
        """The task prompt style the run trained on."""
        return str(self.args.get("prompt_style") or "compact")

    @property
    def max_observation_chars(self) -> int | None:
        """The observation cap the run trained with (None when not recorded)."""
        value = self.args.get("max_observation_chars")
        return int(value) if value else None
