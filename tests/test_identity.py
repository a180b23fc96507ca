"""Evaluation identities (agents/evaluation/identity.py): --resume keys on adapter weights and arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.evaluation.identity import adapter_digest, args_digest
from agents.evaluation.run import Args, evaluate_argv_key, prepare_output_dir


def fake_run(root: Path, weights: bytes) -> Path:
    """A run folder laid out like the trainer's (latest checkpoint, adapter, args.json)."""
    step = root / "checkpoints" / "step-0"
    (step / "adapter").mkdir(parents=True, exist_ok=True)
    (step / "adapter" / "adapter_config.json").write_text("{}")
    (step / "adapter" / "adapter_model.safetensors").write_bytes(weights)
    (step / "trainer.pt").write_bytes(b"")
    (step / "args.json").write_text(json.dumps({"model": "tiny-random", "max_new_tokens": 8}))
    (root / "checkpoints" / "latest").write_text("step-0")
    return root


def test_adapter_digest_follows_the_weights_not_the_folder(tmp_path: Path):
    run = fake_run(tmp_path / "run", b"weights-1")
    first = adapter_digest(run)
    assert adapter_digest(run / "checkpoints" / "step-0") == first  # same adapter, another path
    fake_run(tmp_path / "run", b"weights-2")  # retrained into the same folder
    assert adapter_digest(run) != first
    assert adapter_digest(fake_run(tmp_path / "copy", b"weights-2")) == adapter_digest(run)


def test_args_digest_ignores_what_cannot_change_a_record():
    base = {"agent": "local", "tasks": "warmup-eval", "max_turns": 4, "output_dir": "a", "concurrency": 2}
    assert args_digest(base) == args_digest({**base, "output_dir": "b", "concurrency": 8, "limit": 5})
    assert args_digest(base) != args_digest({**base, "max_turns": 3})


def test_resume_refuses_a_retrained_adapter_in_the_same_folders(tmp_path: Path):
    run = fake_run(tmp_path / "run", b"weights-1")
    out = tmp_path / "eval"
    args = Args(agent="local", tasks="warmup-eval", adapter=str(run), output_dir=str(out), resume=True)
    first = prepare_output_dir(out, args)
    (out / "trajectories.jsonl").write_text("")
    assert prepare_output_dir(out, args) == first  # the same evaluation continues
    fake_run(tmp_path / "run", b"weights-2")
    with pytest.raises(ValueError, match="adapter weights"):
        prepare_output_dir(out, args)
    fake_run(tmp_path / "run", b"weights-1")
    with pytest.raises(ValueError, match="max_turns"):
        prepare_output_dir(out, Args(**{**vars(args), "max_turns": 2}))


def test_benchmark_folders_are_named_by_the_identity(tmp_path: Path):
    run = fake_run(tmp_path / "run", b"weights-1")
    argv = ["--agent", "local", "--adapter", str(run), "--tasks", "warmup-eval"]
    key = evaluate_argv_key(argv)
    assert key == evaluate_argv_key([*argv, "--output_dir", "elsewhere", "--concurrency", "3"])
    fake_run(tmp_path / "run", b"weights-2")
    assert evaluate_argv_key(argv) != key
