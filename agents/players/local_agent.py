"""A local causal LM (optionally with a trained LoRA adapter) as a batch agent: one generate call per turn.

:class:`LocalAgent` implements :class:`~agents.players.api.BatchAgent` with the training rollout's own
player, :class:`agents.learner.rollout.PolicyPlayer`, so an evaluated adapter sees exactly the tokens it
was trained on (a test checks the ids of a two-turn episode are identical both ways):

* token in, token out: each slot keeps its episode as a :class:`~agents.learner.records.Trajectory`;
  the task prompt is rendered once by the chat template (the run's system message first, if any), every
  generated turn is appended as sampled, every observation as ``Policy.encode_observation`` ids.
* one batched ``Policy.sample`` call advances every live slot (greedy by default), with the grammar's
  stop rule (the end of the first complete code block) and EOS.
* the run's :class:`~agents.learner.rollout.Conversation`: response prefix, tokens per turn and per
  episode. Once an episode's budget is spent its action is cut there, every later action is empty (the
  env answers with format errors until its turn limit; the episode scores as unanswered, which it is)
  and ``usage.context_full`` is set.

Adapters: :func:`~agents.players.trained_run.resolve_adapter` accepts the adapter folder the trainer
writes (``runs/<run>/checkpoints/step-N/adapter``), its checkpoint folder, or the run folder (latest
checkpoint). The base model and the conversation are read from the run's ``args.json`` when present.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from agents.engine import Halt
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.records import Trajectory
from agents.learner.rollout import Conversation, PolicyPlayer
from agents.players.api import AgentError, Usage
from agents.players.trained_run import TrainedRun


class LocalAgent:
    """A :class:`~agents.learner.policy.Policy` as a :class:`~agents.players.api.BatchAgent` (see the module docstring).

    Args:
        policy: the model to play with (its adapter, if any, is used).
        num_slots: how many episodes may be in flight.
        conversation: system prompt, response prefix and token budgets (default: the policy's
            ``max_new_tokens`` per turn, 4096 per episode, no system prompt, no prefix).
        temperature: sampling temperature; 0 is greedy.
        seed: seeds the sampling generator (used only when ``temperature > 0``).
        **overrides: single :class:`~agents.learner.rollout.Conversation` fields (``system_prompt``,
            ``response_prefix``, ``max_new_tokens``, ``max_episode_tokens``) replacing ``conversation``'s.
    """

    def __init__(self, policy: Policy, num_slots: int, *, conversation: Conversation | None = None,
                 temperature: float = 0.0, seed: int = 0, **overrides: Any) -> None:
        if num_slots < 1:
            raise ValueError(f"num_slots must be >= 1, got {num_slots}")
        conversation = conversation or Conversation(max_new_tokens=policy.config.max_new_tokens,
                                                    max_episode_tokens=4096)
        conversation = dataclasses.replace(conversation, **{k: v for k, v in overrides.items() if v is not None})
        self.policy = policy
        self.num_slots = num_slots
        self.conversation = conversation
        self.player = PolicyPlayer(policy, conversation, temperature=temperature,
                                   generator=torch.Generator().manual_seed(seed))
        self.response_prefix = conversation.response_prefix
        self._trajs: dict[int, Trajectory] = {}
        self._usage: dict[int, Usage] = {}

    @classmethod
    def from_pretrained(cls, model: str | None = None, adapter: str | Path | None = None, *, num_slots: int = 1,
                        dtype: str | None = None, **kwargs: Any) -> LocalAgent:
        """Load a model (and a trainer-written adapter) and wrap it, in the adapter's run's conversation.

        Args:
            model: ``"smollm2-135m"`` (default), a saved model folder, a cached hub id, or ``"tiny-random"``
                (tests). None: the base model named in the adapter's ``args.json``, else the bundled model.
            adapter: an adapter, checkpoint or run folder (see :func:`~agents.players.trained_run.resolve_adapter`);
                None: base model.
            num_slots: how many episodes may be in flight.
            dtype: weight dtype, ``"float32"`` or ``"bfloat16"``; None: the adapter's run's (its ``dtype``
                argument), else float32. A bfloat16 run played in fp32 would be another policy than the trained one.
            **kwargs: :class:`LocalAgent` options; conversation fields given as None keep the run's.
        """
        from agents.learner.model_loading import load_model_and_tokenizer, make_tiny_model

        run = TrainedRun.load(adapter) if adapter is not None else None
        train_args = run.args if run is not None else {}
        model = model or (run.base_model if run else None) or "smollm2-135m"
        weights = dtype or (run.dtype if run is not None else "float32")
        if weights not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {weights!r}")
        if model == "tiny-random":
            base, tokenizer = make_tiny_model(seed=int(train_args.get("seed", 0)))
            base = base.to(getattr(torch, weights))
        else:
            base, tokenizer = load_model_and_tokenizer(model, dtype=getattr(torch, weights))
        if torch.cuda.is_available():
            base = base.to("cuda")
        if run is not None:
            from peft import PeftModel

            with warnings.catch_warnings():  # peft 0.21 calls a transformers API deprecated in 5.x
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                base = PeftModel.from_pretrained(base, str(run.adapter_dir))
            base.eval()
        conversation = run.conversation if run is not None else Conversation(max_episode_tokens=4096)
        kwargs.setdefault("conversation", conversation)
        config = PolicyConfig(lora_r=0, max_new_tokens=kwargs["conversation"].max_new_tokens,
                              bf16=run.bf16 if run is not None else False)  # the numerics it was trained with
        return cls(Policy(base, tokenizer, config), num_slots, **kwargs)

    def reset_slot(self, slot: int, task_prompt: str) -> None:
        """Start an episode in ``slot``: the prompt's token ids."""
        self._check_slot(slot)
        self._trajs[slot] = self.player.open(task_prompt)
        self._usage[slot] = Usage()

    def token_ids(self, slot: int) -> list[int]:
        """The token ids of the episode now in ``slot`` (prompt, turns and observations so far)."""
        return list(self._trajs[slot].token_ids)

    def act_batch(self, observations: Mapping[int, str]) -> dict[int, str | AgentError]:
        """Append each slot's observation (after its first turn) and generate every slot's next action."""
        live: dict[int, Trajectory] = {}
        for slot, observation in observations.items():
            traj = self._trajs.get(slot)
            if traj is None:
                raise RuntimeError(f"LocalAgent.act_batch: slot {slot} was never reset")
            if self._usage[slot].context_full:
                continue
            if traj.num_turns > 0:
                self.player.append_observation(traj, observation)
            live[slot] = traj
        actions: dict[int, str | AgentError] = {slot: "" for slot in observations}
        prompt_lengths = {slot: len(traj.token_ids) for slot, traj in live.items()}
        for slot, action in (self.player.generate(live) if live else {}).items():
            traj, usage = live[slot], self._usage[slot]
            turn = traj.turns[-1]
            usage.calls += 1
            usage.prompt_tokens += prompt_lengths[slot]
            usage.completion_tokens += turn.gen_end - turn.gen_start
            if isinstance(action, Halt):  # the budget ran out inside this turn: play what was generated
                usage.context_full = True
                action = turn.action
            if not action[len(self.response_prefix):].strip():
                usage.empty_completions += 1
            actions[slot] = action
        return actions

    def usage(self, slot: int) -> Usage:
        """The usage of the episode now in ``slot``."""
        return self._usage.get(slot, Usage())

    def close(self) -> None:
        """Forget every slot's episode (the model stays loaded)."""
        self._trajs.clear()

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self.num_slots:
            raise IndexError(f"slot {slot} outside 0..{self.num_slots - 1}")
