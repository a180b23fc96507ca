"""Checkpoints that a killed run can resume from: adapter, optimiser, sample queue, RNG states, step.

A checkpoint is a folder ``<run>/checkpoints/step-<N>`` written to a temporary sibling and renamed into
place only when complete, then ``<run>/checkpoints/latest`` (a small text file) is rewritten to name it.
A run killed mid-write leaves the previous checkpoint untouched. ``keep`` old checkpoints are retained.

Data parallel: the main process writes the checkpoint. Adapter, optimiser and sample queue are the same on
every process (one replica each, updated identically), so one copy serves all; the random generators
differ per process, so ``trainer.pt`` keeps every process's (``rng_states``) and each process restores its
own. A checkpoint written by ``N`` processes resumes only with ``N``.

Adapters alone: :func:`keep_adapter` writes a playable one (``checkpoints/warmup``: the warm-up's result), and
:func:`init_adapter_dir` / :func:`load_matching_adapter` start a new run from one (``--init_adapter``), refusing an
adapter of another model or LoRA shape. :func:`mix_adapters` writes a weighted mean of two adapters of one shape
(the RL phase's last adapter mixed back towards the adapter RL started from).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.learner.policy import Policy
from agents.learner.sample_queue import SampleQueue

#: Arguments that must match for a resume to make sense (others, like the iteration count, may change).
RESUME_KEYS = ("model", "tasks", "task_pool_size", "lora_r", "lora_alpha", "group_size", "max_turns",
               "seed", "use_queue")


class ResumeMismatchError(ValueError):
    """The checkpoint was written by a run with a different configuration."""


def rng_state() -> dict[str, Any]:
    """Snapshot of the Python, numpy and torch global generators (CUDA's too, on a GPU)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, iteration: int, policy: Policy, optimizer: torch.optim.Optimizer,
                    queue: SampleQueue | None, args: Any, extra: dict[str, Any], keep: int = 2,
                    rng_states: list[dict[str, Any]] | None = None) -> Path:
    """Write a complete checkpoint for ``iteration`` and point ``latest`` at it.

    ``rng_states``: every data-parallel process's :func:`rng_state`, in rank order (default: this one's).
    """
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{iteration}"
    tmp = root / f".tmp-step-{iteration}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    policy.save_adapter(str(tmp / "adapter"))
    states = rng_states or [rng_state()]
    torch.save({"optimizer": optimizer.state_dict(), "rng": states[0], "rng_states": states, "iteration": iteration,
                "policy_version": policy.version, "extra": extra}, tmp / "trainer.pt")
    if queue is not None:
        torch.save(queue.state_dict(), tmp / "queue.pt")
    (tmp / "args.json").write_text(json.dumps(asdict(args), indent=2, default=str))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    latest_tmp = root / ".latest.tmp"
    latest_tmp.write_text(final.name)
    os.replace(latest_tmp, root / "latest")
    for old in sorted((p for p in root.glob("step-*") if p != final),
                      key=lambda p: int(p.name.split("-", 1)[1]))[:-max(keep - 1, 0) or None]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run folder, or None."""
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = run_dir / "checkpoints" / pointer.read_text().strip()
    return path if (path / "trainer.pt").is_file() else None


def check_compatible(checkpoint: Path, args: Any) -> None:
    """Raise :class:`ResumeMismatchError` naming every differing key in :data:`RESUME_KEYS`."""
    saved = json.loads((checkpoint / "args.json").read_text())
    current = asdict(args)
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}" for k in RESUME_KEYS
             if k in current and saved.get(k) != current.get(k)]
    if diffs:
        raise ResumeMismatchError(f"cannot resume from {checkpoint}: it was written by another configuration "
                                  f"({'; '.join(diffs)}). Use a new --output_dir or matching arguments.")


def load_checkpoint(checkpoint: Path, policy: Policy, optimizer: torch.optim.Optimizer,
                    queue: SampleQueue | None, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
    """Restore adapter, optimiser, queue and this process's RNG; return the trainer state (iteration, extra).

    Raises :class:`ResumeMismatchError` when the checkpoint was written by another number of processes.
    """
    state = torch.load(checkpoint / "trainer.pt", weights_only=False)
    states = state.get("rng_states") or [state["rng"]]
    if len(states) != world_size:
        raise ResumeMismatchError(f"cannot resume from {checkpoint}: it was written by {len(states)} data-parallel "
                                  f"process(es), this run has {world_size}. Resume with the same --num_processes.")
    policy.load_adapter_weights(str(checkpoint / "adapter"))
    optimizer.load_state_dict(state["optimizer"])
    if queue is not None and (checkpoint / "queue.pt").is_file():
        queue.load_state_dict(torch.load(checkpoint / "queue.pt", weights_only=False))
    set_rng_state(states[rank])
    policy.version = int(state["policy_version"])
    return state


def resolve_adapter(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Find the adapter folder (``adapter_config.json`` inside) and the training arguments beside it.

    Args:
        path: an adapter folder, a checkpoint folder holding ``adapter/``, or a run folder (its latest
            checkpoint is used).

    Returns:
        ``(adapter folder, training args)``; the args are ``{}`` when no ``args.json`` (or, for a run of
        ``agents/train_trl.py``, ``toolr1_args.json``) is found.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"adapter path {str(root)!r} does not exist")
    candidates = [root, root / "adapter"]
    latest = latest_checkpoint(root)
    if latest is not None:
        candidates.append(latest / "adapter")
    for folder in candidates:
        if (folder / "adapter_config.json").is_file():
            # args.json: agents/train_grpo.py's record; toolr1_args.json: agents/train_trl.py's (same keys).
            for args_file in (folder.parent / "args.json", folder / "args.json", folder / "toolr1_args.json"):
                if args_file.is_file():
                    return folder, json.loads(args_file.read_text())
            return folder, {}
    raise FileNotFoundError(f"no adapter_config.json in {str(root)!r}, {str(root / 'adapter')!r} or a latest "
                            "checkpoint below it: pass an adapter folder, a checkpoint or a run folder")


def keep_adapter(policy: Policy, folder: Path, args: Any) -> None:
    """Write the adapter and the run's arguments to ``folder`` (a playable checkpoint: ``adapter/`` + ``args.json``)."""
    folder.mkdir(parents=True, exist_ok=True)
    policy.save_adapter(str(folder / "adapter"))
    (folder / "args.json").write_text(json.dumps(asdict(args), indent=2))


def init_adapter_dir(args: Any) -> Path:
    """The adapter folder ``--init_adapter`` names, refused when its run used another model or LoRA shape."""
    folder, saved = resolve_adapter(args.init_adapter)
    config = json.loads((folder / "adapter_config.json").read_text())
    problems = [f"LoRA {key} {config.get(key)} (this run: {mine})" for key, mine in
                (("r", args.lora_r), ("lora_alpha", args.lora_alpha)) if config.get(key) != mine]
    if saved.get("model") and saved["model"] != args.model:
        problems.append(f"model {saved['model']!r} (this run: {args.model!r})")
    if problems:
        raise ValueError(f"--init_adapter {args.init_adapter}: the adapter was trained with {', '.join(problems)}; "
                         "start from an adapter of the same model and LoRA shape")
    return folder


def load_matching_adapter(policy: Policy, folder: Path) -> None:
    """Load adapter weights, refusing any tensor whose name or shape differs from the policy's adapter."""
    from peft.utils import load_peft_weights

    saved = load_peft_weights(str(folder))
    own = {k: v for k, v in policy.model.state_dict().items() if "lora_" in k}
    stripped = {k.replace(".default", ""): v.shape for k, v in own.items()}
    wrong = [k for k, v in saved.items() if stripped.get(k) != v.shape]
    if wrong or len(saved) != len(own):
        raise ValueError(f"--init_adapter {folder}: {len(wrong)} of {len(saved)} tensors do not match this model's "
                         f"adapter (first: {wrong[:1]}); start from an adapter of the same model and LoRA shape")
    policy.load_adapter_weights(str(folder))


def mix_adapters(start: str | Path, end: str | Path, weight: float, output: str | Path) -> Path:
    """Write ``(1 - weight) * start + weight * end``, tensor by tensor, as a playable adapter in ``output``.

    The mean is of the adapter's parameters (LoRA's A and B matrices), not of the weight change ``B @ A`` they
    make: for an RL adapter trained from ``start`` the two differ by ``weight * (1 - weight) * dB @ dA``, second
    order in how far RL moved. ``weight`` 0 is ``start``, 1 is ``end``; above 1 extrapolates.

    Args:
        start: the adapter RL started from (any path :func:`resolve_adapter` takes).
        end: the adapter it ended on.
        weight: how far from ``start`` towards ``end``.
        output: the folder written: ``adapter/``, ``args.json`` (``end``'s run) and ``mix.json`` (what was mixed).

    Raises:
        ValueError: a non-finite weight, or adapters of another LoRA shape or model (named).
    """
    from safetensors.torch import load_file, save_file

    if not np.isfinite(weight):
        raise ValueError(f"mix weight {weight}: give a finite number (0 = start, 1 = end)")
    (start_dir, start_args), (end_dir, end_args) = resolve_adapter(start), resolve_adapter(end)
    configs = [json.loads((d / "adapter_config.json").read_text()) for d in (start_dir, end_dir)]
    differ = [key for key in ("r", "lora_alpha", "target_modules", "base_model_name_or_path")
              if _comparable(configs[0].get(key)) != _comparable(configs[1].get(key))]
    if start_args.get("model") and end_args.get("model") and start_args["model"] != end_args["model"]:
        differ.append("model")
    first, second = (load_file(str(d / "adapter_model.safetensors")) for d in (start_dir, end_dir))
    if not differ and (first.keys() != second.keys() or any(first[k].shape != second[k].shape for k in first)):
        differ.append("tensor names or shapes")
    if differ:
        raise ValueError(f"cannot mix {start_dir} and {end_dir}: their {', '.join(differ)} differ; mix two "
                         "adapters of one model and LoRA shape")
    mixed = {k: ((1 - weight) * first[k].float() + weight * second[k].float()).to(first[k].dtype).contiguous()
             for k in first}
    folder = Path(output)
    (folder / "adapter").mkdir(parents=True, exist_ok=True)
    save_file(mixed, str(folder / "adapter" / "adapter_model.safetensors"), metadata={"format": "pt"})
    shutil.copy(end_dir / "adapter_config.json", folder / "adapter" / "adapter_config.json")
    (folder / "args.json").write_text(json.dumps(end_args, indent=2))
    (folder / "mix.json").write_text(json.dumps({"start": str(start_dir), "end": str(end_dir), "weight": weight},
                                                indent=2))
    return folder


def _comparable(value: Any) -> Any:
    """A config value compared by content: PEFT writes ``target_modules`` (a set) in no fixed order."""
    return sorted(value) if isinstance(value, list) else value
