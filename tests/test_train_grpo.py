"""The training entry point, end to end with a tiny random model: a short run, resume after a kill."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.learner.heldout import EvalProgress, progress_lines

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "agents" / "train_grpo.py"
SMALL = ["--preset", "single-step", "--model", "tiny-random", "--tasks", "train-easy", "--task_pool_size", "4",
         "--eval_tasks", "warmup-eval",
         "--eval_size", "2", "--tasks_per_iteration", "2", "--group_size", "2", "--num_envs", "2",
         "--max_new_tokens", "12", "--max_turns", "2", "--max_episode_tokens", "1024", "--eval_every", "0",
         "--checkpoint_every", "1"]


def run(args: list[str], timeout: float = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(SCRIPT), *SMALL, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_iterations_write_metrics_checkpoints_and_curves(tmp_path):
    out = tmp_path / "run"
    result = run(["--iterations", "2", "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    logged = rows(out)
    assert [r["step"] for r in logged] == [0, 1, 2]
    assert "eval/success" in logged[0] and "eval/success" in logged[-1]
    # Reference solutions that fit in --max_turns 2 reach full reward and are cached; longer ones are not.
    assert logged[0]["queue/demonstrations_offered"] == 4 and 1 <= logged[0]["queue/demonstrations_admitted"] <= 4
    for key in ("reward/mean", "reward/answer_score", "reward/exec_success", "rollout/tokens_per_s",
                "rollout/env_steps_per_s", "groups/zero_signal_before", "queue/size", "advantage/std"):
        assert key in logged[1], key
    assert logged[2]["rollout/online_total"] <= 8  # 2 tasks x 2 episodes x 2 iterations at most
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 2 and 0.0 <= summary["eval_success_end"] <= 1.0
    assert (out / "curves.png").stat().st_size > 1000
    assert (out / "checkpoints" / "latest").read_text() == "step-1"
    assert (out / "checkpoints" / "step-1" / "adapter" / "adapter_config.json").is_file()
    assert any((out / "tensorboard").iterdir())
    # Every episode is written for reading: the greedy evaluations and each iteration's sampled rollouts.
    trained = [json.loads(line) for line in (out / "episodes" / "train-2.jsonl").read_text().splitlines()]
    assert len(trained) == logged[2]["rollout/online_total"] - logged[1]["rollout/online_total"]
    assert all(e["turns"] and {"action", "error", "observation"} <= e["turns"][0].keys() for e in trained)
    assert len((out / "episodes" / "eval-2.jsonl").read_text().splitlines()) == 2
    # Evaluations report their progress while they play, not only when they end.
    assert re.search(r"held-out evaluation \(end\): turn 1, \d/2 episodes ended, about \d+:\d\d left",
                     result.stderr)


def test_progress_lines_count_turns_and_episodes_and_estimate_the_time_left() -> None:
    said: list[str] = []
    report = progress_lines(said.append, "held-out evaluation (start)", 4, every_s=10.0)
    # 32 episodes side by side, 30 s a turn, all to the turn limit (the base model): nothing ends before turn 4.
    for rounds in (1, 2, 3, 4):
        report(EvalProgress(rounds=rounds, ended=32 if rounds == 4 else 0, total=32, seconds=30.0 * rounds))
    assert said == ["held-out evaluation (start): turn 1, 0/32 episodes ended, about 1:30 left",
                    "held-out evaluation (start): turn 2, 0/32 episodes ended, about 1:00 left",
                    "held-out evaluation (start): turn 3, 0/32 episodes ended, about 0:30 left"]
    said.clear()
    report = progress_lines(said.append, "selection split after 2 iterations", 4, every_s=10.0)
    report(EvalProgress(rounds=2, ended=24, total=32, seconds=60.0))  # most answered on turn 2: two turns left
    report(EvalProgress(rounds=3, ended=28, total=32, seconds=65.0))  # within 10 s of the last line: quiet
    assert said == ["selection split after 2 iterations: turn 2, 24/32 episodes ended, about 1:00 left"]
    # More episodes than slots: rounds pass the turn limit and the pace per episode ended decides.
    assert EvalProgress(rounds=9, ended=60, total=85, seconds=120.0).seconds_left(max_turns=4) == 50.0
    assert all(re.search(r"about \d+:\d\d left$", line) for line in said)


def test_resume_after_a_kill_continues_where_it_stopped(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen([sys.executable, str(SCRIPT), *SMALL, "--iterations", "6", "--output_dir", str(out)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    pointer = out / "checkpoints" / "latest"
    deadline = time.monotonic() + 300
    while not (pointer.is_file() and pointer.read_text() == "step-1") and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert pointer.is_file(), "no checkpoint was written before the kill"
    done_before = int(pointer.read_text().split("-")[1])
    assert done_before < 5, "the run finished before it could be killed"

    result = run(["--iterations", "6", "--output_dir", str(out), "--resume"])
    assert result.returncode == 0, result.stderr[-3000:]
    # Rows logged after the last checkpoint were cut back and redone: every step exactly once.
    assert [r["step"] for r in rows(out)] == list(range(7))
    assert (out / "checkpoints" / "latest").read_text() == "step-5"
    kept = sorted(p.name for p in (out / "checkpoints").glob("step-*"))
    assert kept == ["step-4", "step-5"]  # a checkpoint every iteration, older ones pruned


def test_a_resumed_run_replays_exactly_what_an_uninterrupted_run_does(tmp_path):
    """Trainer RNG (task choice, env seeds), sampler RNG, adapter, optimiser and queue all come back."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(["--iterations", "2", "--output_dir", str(straight)]).returncode == 0
    assert run(["--iterations", "1", "--output_dir", str(split)]).returncode == 0
    result = run(["--iterations", "2", "--output_dir", str(split), "--resume"])
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = rows(straight)[2], rows(split)[2]
    for key in ("rollout/task_ids", "rollout/generated_tokens", "reward/mean", "rollout/online_total",
                "update/loss", "queue/size"):
        assert a[key] == b[key], key


def test_resume_from_another_configuration_is_refused(tmp_path):
    out = tmp_path / "run"
    assert run(["--iterations", "1", "--output_dir", str(out)]).returncode == 0
    result = run(["--iterations", "2", "--output_dir", str(out), "--resume", "--lora_r", "4"])
    assert result.returncode != 0
    assert "another configuration" in result.stderr and "lora_r" in result.stderr


@pytest.mark.parametrize(("flag", "message"), [(["--tasks", "no-such-split"], "neither a bundled split"),
                                               (["--model", "/no/such/model"], "/no/such/model")])
def test_bad_arguments_give_clear_errors(tmp_path, flag, message):
    result = run(["--iterations", "1", "--output_dir", str(tmp_path / "run"), *flag])
    assert result.returncode != 0 and message in result.stderr


def accelerate(args: list[str], timeout: float = 400) -> subprocess.CompletedProcess:
    """Two data-parallel CPU processes (gloo). torchrun, because ``accelerate launch --cpu --num_processes 2``
    starts a single process (accelerate 1.16); accelerate's ``Accelerator`` then picks the group up."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               str(SCRIPT), *SMALL, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})


def test_two_data_parallel_processes_keep_bit_identical_adapters_and_one_queue_across_a_resume(tmp_path):
    out = tmp_path / "run"
    result = accelerate(["--iterations", "3", "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    logged = rows(out)
    assert [r["step"] for r in logged] == [0, 1, 2, 3]  # only the main process writes the record
    assert (out / "checkpoints" / "latest").read_text() == "step-2"
    checksums = [(r["dp/adapter_checksum/rank0"], r["dp/adapter_checksum/rank1"]) for r in logged[1:]]
    assert all(a == b for a, b in checksums), checksums  # gathered from both ranks at every update
    assert len({a for a, _ in checksums}) == 3  # the adapter changed at every update
    assert all(r["dp/queue_checksum/rank0"] == r["dp/queue_checksum/rank1"] for r in logged[1:])
    # both ranks chose the same tasks at every iteration (one shared stream; each rank's shard has its own)
    assert all(r["dp/task_digest/rank0"] == r["dp/task_digest/rank1"] for r in logged[1:])
    assert logged[1]["rollout/episodes"] == 2  # the main process played its share (one group of 2) ...
    assert logged[1]["groups/count"] == 2  # ... and gathered the whole batch (2 tasks)

    resumed = accelerate(["--iterations", "4", "--output_dir", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    last = rows(out)[-1]
    assert last["step"] == 4 and last["dp/adapter_checksum/rank0"] == last["dp/adapter_checksum/rank1"]
    assert last["dp/queue_checksum/rank0"] == last["dp/queue_checksum/rank1"]
    assert "world" not in resumed.stderr
    # a checkpoint of 2 processes does not resume in 1
    single = run(["--iterations", "5", "--output_dir", str(out), "--resume"])
    assert single.returncode != 0 and "2 data-parallel process(es), this run has 1" in single.stderr


def test_a_process_count_that_does_not_divide_the_batch_is_refused_before_any_work(tmp_path):
    result = accelerate(["--iterations", "1", "--tasks_per_iteration", "3", "--output_dir", str(tmp_path / "r")])
    assert result.returncode != 0
    assert "--num_processes 2 does not divide --tasks_per_iteration 3" in result.stderr
    assert not (tmp_path / "r" / "metrics.jsonl").exists()


def test_demonstrations_enter_the_queue_rescored_and_without_a_behaviour_policy():
    from agents.learner.model_loading import make_tiny_model
    from agents.learner.playing import seed_queue_with_demonstrations
    from agents.learner.policy import Policy, PolicyConfig
    from agents.learner.sample_queue import SampleQueue
    from agents.learner.train import Args, make_envs, make_task_pool

    args = Args(model="tiny-random", tasks="train-easy", task_pool_size=2, num_envs=2, max_turns=4)
    model, tokenizer = make_tiny_model(seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, max_new_tokens=8))
    pool, queue = make_task_pool(args, 0), SampleQueue()
    with make_envs(pool, args) as envs:
        stats = seed_queue_with_demonstrations(policy, envs, pool, queue, args)
    assert stats["queue/demonstrations_admitted"] >= 1
    entries = [e.trajectory for t in pool.tasks for e in queue.entries(t.task_id)]
    assert entries and all(t.metadata.get("demonstration") for t in entries)
    # Weight 1 in the loss: no sampler log-probs to divide by (a demonstration's are placeholders).
    assert all(t.behaviour_logprobs is None for t in entries)
    assert all(lp < 0 for t in entries for lp, m in zip(t.old_logprobs, t.loss_mask, strict=True) if m)


def test_held_out_tasks_of_another_world_are_evaluated_with_that_worlds_tools():
    from agents.learner.train import make_task_pool, parse_args, same_tools
    from toolr1_env.env import ToolR1Env, resolve_tasks

    args = parse_args(["--preset", "multistep"])
    pool, held_out = make_task_pool(args, 0), resolve_tasks("level1-eval")
    assert same_tools(pool, pool) and not same_tools(pool, held_out)  # so main() gives evaluation its own envs
    task = next(t for t in held_out.tasks if t.level == 1 and "find_page(" in (t.reference_solution or ""))
    steps = task.reference_solution.split("# --- step ---")
    answers = {}
    for name, task_set in (("training world", pool), ("its own world", held_out)):
        env = ToolR1Env(tasks=task_set, max_turns=len(steps))
        try:
            env.reset(options={"task": task})
            for step in steps:
                _, reward, terminated, truncated, info = env.step(step)
            answers[name] = info["reward_components"]["answer_score"]
        finally:
            env.close()
    # The training world's read_page has none of the held-out world's pages: only its own tools solve it.
    assert answers == {"training world": 0.0, "its own world": 1.0}
