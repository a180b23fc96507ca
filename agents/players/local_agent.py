"""A local causal LM (optionally with a trained LoRA adapter) as a batch agent: one generate call per turn.

:class:`LocalAgent` implements :class:`~agents.players.api.BatchAgent` the way ``agents/rollout.py`` plays
training episodes, so an evaluated adapter sees exactly the token layout it was trained on:

* token in, token out: each slot keeps its episode's token ids; the task prompt is rendered once by the
  chat template (optional system message first), every generated turn is appended as sampled, and every
  observation is appended as ``Policy.encode_observation`` ids. Nothing is re-tokenised.
* one batched ``Policy.sample`` call advances every live slot (greedy by default), with the policy's stop
  rules (a closing code fence, ``</code>``, EOS).
* ``max_episode_tokens`` bounds a slot's context: generation is capped by the room left, and once the
  context is full every later action is empty (the env answers with format errors until its turn limit;
  the episode scores as unanswered, which it is) and ``usage.context_full`` is set.

Adapters: :func:`resolve_adapter` accepts the adapter folder the trainer writes
(``runs/<run>/checkpoints/step-N/adapter``), its checkpoint folder, or the run folder (latest
checkpoint). The base model and prompt settings are read from the checkpoint's ``args.json`` when present.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from agents.learner.policy import Policy, PolicyConfig
from agents.learner.rollout import build_prompt
from agents.players.api import AgentError, Usage


def resolve_adapter(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Find the adapter folder (``adapter_config.json`` inside) and the training arguments beside it.

    Args:
        path: an adapter folder, a checkpoint folder holding ``adapter/``, or a run folder (its latest
            checkpoint is used).

    Returns:
        ``(adapter folder, training args)``; the args are ``{}`` when no ``args.json`` is found.
    """
    from agents.learner.checkpointing import latest_checkpoint

    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"adapter path {str(root)!r} does not exist")
    candidates = [root, root / "adapter"]
    latest = latest_checkpoint(root)
    if latest is not None:
        candidates.append(latest / "adapter")
    for folder in candidates:
        if (folder / "adapter_config.json").is_file():
            for args_file in (folder.parent / "args.json", folder / "args.json"):
                if args_file.is_file():
                    return folder, json.loads(args_file.read_text())
            return folder, {}
    raise FileNotFoundError(f"no adapter_config.json in {str(root)!r}, {str(root / 'adapter')!r} or a latest "
                            "checkpoint below it: pass an adapter folder, a checkpoint or a run folder")


class LocalAgent:
    """A :class:`~agents.learner.policy.Policy` as a :class:`~agents.players.api.BatchAgent` (see the module docstring).

    Args:
        policy: the model to play with (its adapter, if any, is used).
        num_slots: how many episodes may be in flight.
        system_prompt: optional system message before each task prompt (as in training).
        temperature: sampling temperature; 0 is greedy.
        max_new_tokens: tokens per turn (default: the policy's).
        max_episode_tokens: context budget of one episode, prompt included.
        seed: seeds the sampling generator (used only when ``temperature > 0``).
        response_prefix: text forced at the start of every turn, as the trainer's ``--response_prefix``
            (prompt tokens, prepended to the returned action).
    """

    def __init__(self, policy: Policy, num_slots: int, *, system_prompt: str | None = None, temperature: float = 0.0,
                 max_new_tokens: int | None = None, max_episode_tokens: int = 4096, seed: int = 0,
                 response_prefix: str = "") -> None:
        if num_slots < 1:
            raise ValueError(f"num_slots must be >= 1, got {num_slots}")
        self.policy = policy
        self.num_slots = num_slots
        self.system_prompt = system_prompt or None
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens or policy.config.max_new_tokens
        self.max_episode_tokens = max_episode_tokens
        self.generator = torch.Generator().manual_seed(seed)
        self.response_prefix = response_prefix
        self._prefix_ids = policy.tokenize(response_prefix) if response_prefix else []
        self._ids: dict[int, list[int]] = {}
        self._ended_with_eos: dict[int, bool] = {}
        self._turns: dict[int, int] = {}
        self._usage: dict[int, Usage] = {}

    @classmethod
    def from_pretrained(cls, model: str | None = None, adapter: str | Path | None = None, *, num_slots: int = 1,
                        **kwargs: Any) -> LocalAgent:
        """Load a model (and a trainer-written adapter) and wrap it.

        Args:
            model: ``"smollm2-135m"`` (default), a saved model folder, a cached hub id, or ``"tiny-random"``
                (tests). None: the base model named in the adapter's ``args.json``, else the bundled model.
            adapter: an adapter, checkpoint or run folder (see :func:`resolve_adapter`); None: base model.
            num_slots: how many episodes may be in flight.
            **kwargs: :class:`LocalAgent` options; ``system_prompt`` defaults to the training run's.
        """
        from agents.learner.model_loading import load_model_and_tokenizer, make_tiny_model

        train_args: dict[str, Any] = {}
        adapter_dir = None
        if adapter is not None:
            adapter_dir, train_args = resolve_adapter(adapter)
        model = model or train_args.get("model") or "smollm2-135m"
        if model == "tiny-random":
            base, tokenizer = make_tiny_model(seed=int(train_args.get("seed", 0)))
        else:
            base, tokenizer = load_model_and_tokenizer(model)
        if torch.cuda.is_available():
            base = base.to("cuda")
        if adapter_dir is not None:
            from peft import PeftModel

            with warnings.catch_warnings():  # peft 0.21 calls a transformers API deprecated in 5.x
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                base = PeftModel.from_pretrained(base, str(adapter_dir))
            base.eval()
        config = PolicyConfig(lora_r=0, max_new_tokens=int(train_args.get("max_new_tokens", 384)))
        kwargs.setdefault("system_prompt", train_args.get("system_prompt") or None)
        kwargs.setdefault("response_prefix", train_args.get("response_prefix") or "")
        return cls(Policy(base, tokenizer, config), num_slots, **kwargs)

    def reset_slot(self, slot: int, task_prompt: str) -> None:
        """Start an episode in ``slot``: the prompt's token ids."""
        self._check_slot(slot)
        self._ids[slot] = build_prompt(self.policy, task_prompt, self.system_prompt)
        self._ended_with_eos[slot] = False
        self._turns[slot] = 0
        self._usage[slot] = Usage()

    def act_batch(self, observations: Mapping[int, str]) -> dict[int, str | AgentError]:
        """Append each slot's observation (after its first turn) and generate every slot's next action."""
        rows: list[int] = []
        for slot, observation in observations.items():
            if slot not in self._ids:
                raise RuntimeError(f"LocalAgent.act_batch: slot {slot} was never reset")
            if self._turns[slot] > 0:
                self._ids[slot] += self.policy.encode_observation(observation,
                                                                  ended_with_eos=self._ended_with_eos[slot])
            self._turns[slot] += 1
            self._ids[slot] += self._prefix_ids
            if self._room(slot) > 0:
                rows.append(slot)
            else:
                self._usage[slot].context_full = True
        actions: dict[int, str | AgentError] = {slot: "" for slot in observations}
        if not rows:
            return actions
        budget = max(1, min(self.max_new_tokens, max(self._room(s) for s in rows)))
        generations = self.policy.sample([self._ids[s] for s in rows], max_new_tokens=budget,
                                         temperature=self.temperature, generator=self.generator,
                                         prefix_text=self.response_prefix)
        for slot, generation in zip(rows, generations, strict=True):
            room = self._room(slot)
            ids = generation.token_ids[:room]
            usage = self._usage[slot]
            usage.calls += 1
            usage.prompt_tokens += len(self._ids[slot])
            usage.completion_tokens += len(ids)
            self._ids[slot] += ids
            self._ended_with_eos[slot] = generation.finish_reason == "eos" and len(ids) == len(generation.token_ids)
            text = generation.text if len(ids) == len(generation.token_ids) else \
                self.policy.tokenizer.decode(ids, skip_special_tokens=True)
            if not text.strip():
                usage.empty_completions += 1
            actions[slot] = self.response_prefix + text
        return actions

    def usage(self, slot: int) -> Usage:
        """The usage of the episode now in ``slot``."""
        return self._usage.get(slot, Usage())

    def close(self) -> None:
        """Forget every slot's episode (the model stays loaded)."""
        self._ids.clear()
        self._turns.clear()

    def _room(self, slot: int) -> int:
        return self.max_episode_tokens - len(self._ids[slot])

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self.num_slots:
            raise IndexError(f"slot {slot} outside 0..{self.num_slots - 1}")
