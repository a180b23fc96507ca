"""Trainers against a pool of environment servers: ``Task`` objects cross the wire as id + task set, and our
learner's collection, held-out evaluation and whole ``train_grpo.py`` run give on 2 loopback servers what
they give in process. Skipped without the ``openenv`` extra."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

pytest.importorskip("openenv")
pytest.importorskip("websockets")

from websockets.sync.client import connect  # noqa: E402

from agents.engine import EpisodeRequest  # noqa: E402
from agents.learner.config import Args, make_task_pool  # noqa: E402
from agents.learner.data_parallel import DataParallel  # noqa: E402
from agents.learner.heldout import evaluate, make_envs, make_eval_sets  # noqa: E402
from agents.learner.model_loading import make_tiny_model  # noqa: E402
from agents.learner.playing import collect_everywhere, demonstration_turns  # noqa: E402
from agents.learner.policy import Policy, PolicyConfig  # noqa: E402
from agents.learner.records import Trajectory  # noqa: E402
from toolr1_env import suite  # noqa: E402
from toolr1_env.env import ToolR1Env  # noqa: E402
from toolr1_env.sandbox import SandboxConfig  # noqa: E402
from toolr1_env.serving.local_server import LocalServer  # noqa: E402
from toolr1_env.serving.remote_env import (  # noqa: E402
    RemoteEnvError,
    RemoteToolR1Env,
    parse_servers,
    remote_vector_env,
    task_set_name,
)

ROOT = Path(__file__).resolve().parents[1]
LIGHT = SandboxConfig(preload=())


@pytest.fixture(scope="module")
def servers():
    with ThreadPoolExecutor(2) as pool:  # each start waits for its /health: start both at once
        started = list(pool.map(lambda _: LocalServer("--tasks", "warmup"), range(2)))
    yield started
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def policy():
    model, tokenizer = make_tiny_model(seed=0)
    return Policy(model, tokenizer, PolicyConfig(lora_r=4, max_new_tokens=12))


def test_server_lists_parse_and_task_sets_are_named_by_their_bundled_split():
    assert parse_servers(" ws://a:1, ws://b:2 ,") == ["ws://a:1", "ws://b:2"]
    with pytest.raises(ValueError, match="no environment server"):
        parse_servers(" , ")
    pool = make_task_pool(Args(tasks="train-easy", task_pool_size=3))
    assert pool.name == "train-easy-pool@0" and task_set_name(pool) == "train-easy"
    assert task_set_name(pool.tasks[0]) == "train-easy"
    custom = pool.tasks[0].replace(metadata={"split": "train-easy"})  # user metadata, not a bundled task
    assert task_set_name(custom) is None
    assert task_set_name(pool.subset("mine", [custom])) == "mine"


def test_a_task_object_is_played_from_its_own_set_on_the_server_as_in_process(servers):
    """An env of split ``warmup`` asked for a ``train-easy`` task: the server plays its own copy of that task."""
    task = suite.load_split("train-easy").pick(100_000)
    solution = f"```py\n{task.reference_solution}\n```"
    remote = RemoteToolR1Env(servers[0].url, tasks="warmup", max_turns=3)
    local = ToolR1Env(tasks="warmup", sandbox=LIGHT, max_turns=3)
    try:
        assert remote.reset(options={"task": task}) == local.reset(options={"task": task})
        there, here = remote.step(solution), local.step(solution)
        assert there == here and there[1] == pytest.approx(1.2) and there[2] is True
        assert there[4]["final_answer"] == task.answer
        with pytest.raises(RemoteEnvError, match="another question"):  # different versions: an error, not a swap
            remote.reset(options={"task": task.replace(question="What is two plus two?")})
        with pytest.raises(RemoteEnvError, match="has no task 'mine-1'.*plays only tasks of sets it offers"):
            remote.reset(options={"task": task.replace(task_id="mine-1", metadata={})})
        assert remote.reset(options={"task_id": "warmup-3"})[1] == local.reset(options={"task_id": "warmup-3"})[1]
    finally:
        remote.close()
        local.close()


def test_an_unknown_task_set_is_a_clear_protocol_error_and_the_session_serves_on(servers):
    ws = connect(f"{servers[0].url}/ws", max_size=None).__enter__()
    try:
        ws.send(json.dumps({"type": "reset", "data": {"task_id": "gaia-1", "task_set": "gaia"}}))
        reply = json.loads(ws.recv(timeout=120))
        assert reply["type"] == "error" and "unknown task set 'gaia'" in reply["data"]["message"]
        assert "warmup-eval" in reply["data"]["message"]  # it lists the sets it offers
        ws.send(json.dumps({"type": "reset", "data": {"task_id": "warmup-eval-0002", "task_set": "warmup-eval"}}))
        reply = json.loads(ws.recv(timeout=300))
        assert reply["type"] == "observation" and reply["data"]["observation"]["info"]["task_id"] == "warmup-eval-0002"
    finally:
        ws.close()


def test_envs_spread_round_robin_over_the_servers(servers):
    urls = [s.url for s in servers]
    envs = remote_vector_env(",".join(urls), 4, "warmup", max_turns=2)
    try:
        envs.reset_some(range(4), options=[{"task_id": "warmup-1"}] * 4)
        assert [e.server for e in envs.envs] == [f"{u}/ws" for u in urls * 2]
        assert sum(s.status()["active_sessions"] for s in servers) == 4
    finally:
        envs.close()


def per_task(trajectories: list[Trajectory]) -> list[tuple]:
    """What a trajectory's result is: its task, tokens, turns, reward and its parts, answer, infra error."""
    return [(t.task_id, t.group_id, t.token_ids, t.num_turns, t.reward, t.reward_components, t.final_answer,
             t.truncated, t.infra_error) for t in trajectories]


def test_learner_collection_and_evaluation_give_the_same_results_on_two_servers(servers, policy):
    """Scripted demonstrations (rewarded), a sampled group and a greedy held-out evaluation (``Task`` objects
    of two worlds), played in process and on two servers: equal tokens, rewards and answers, task by task."""
    here = Args(tasks="train-easy", task_pool_size=2, num_envs=2, max_turns=2, max_episode_tokens=1024,
                step_timeout=60.0)  # generous: a step timed out on one side only is a busy machine, not a difference
    there = dataclasses.replace(here, env_servers=",".join(s.url for s in servers))
    pool = make_task_pool(here)
    results = {}
    for args in (here, there):
        envs = make_envs(pool, args)
        sets = make_eval_sets("warmup-eval,train-easy@100000", -1, 1, args, pool, envs)
        try:
            if args is there:
                assert all(isinstance(e, RemoteToolR1Env) for s in sets for e in s.envs.envs)
            demos = demonstration_turns(pool, args)
            requests = [EpisodeRequest(task_id, f"demo-{task_id}", seed=0) for task_id in demos]
            scripted, _ = collect_everywhere(DataParallel(), policy, envs, requests, list(demos.values()),
                                             max_episode_tokens=args.max_episode_tokens,
                                             response_prefix=args.response_prefix)
            sampled_requests = [EpisodeRequest(pool.tasks[1].task_id, "g", seed=7)] * 2
            sampled, _ = collect_everywhere(DataParallel(), policy, envs, sampled_requests,
                                            max_episode_tokens=args.max_episode_tokens,
                                            response_prefix=args.response_prefix,
                                            generator=torch.Generator().manual_seed(3))
            metrics = evaluate(policy, sets, args)
            results[args is there] = (per_task(scripted), per_task(sampled),
                                      {k: v for k, v in metrics.items() if not k.startswith("time/")})
        finally:
            envs.close()
            for s in sets:
                if s.owns_envs:
                    s.envs.close()
    for part, (remote, local) in enumerate(zip(results[True], results[False], strict=True)):
        if isinstance(local, list):  # episode by episode, so a failure names the episode and the field
            for a, b in zip(remote, local, strict=True):
                assert a == b, (part, [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y], a[0])
        assert remote == local, part
    scripted = results[False][0]
    assert [row[4] for row in scripted] == pytest.approx([1.2, 1.2])  # both solved: answer + exec bonus
    assert results[False][2]["eval/tasks"] == 2.0 and results[False][2]["eval/infra_errors"] == 0.0


def test_train_grpo_with_env_servers_runs_as_in_process(servers, tmp_path):
    """A whole tiny ``train_grpo.py`` run (1 iteration) on the servers logs what the same run logs here."""
    flags = ["--preset", "single-step", "--model", "tiny-random", "--tasks", "train-easy", "--task_pool_size", "4",
             "--eval_tasks", "warmup-eval", "--eval_size", "2", "--tasks_per_iteration", "2", "--group_size", "2",
             "--num_envs", "2", "--max_new_tokens", "12", "--max_turns", "2", "--max_episode_tokens", "1024",
             "--eval_every", "0", "--iterations", "1"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    logged = {}
    for name, extra in (("here", []), ("there", ["--env_servers", ",".join(s.url for s in servers)])):
        out = tmp_path / name
        done = subprocess.run([sys.executable, str(ROOT / "agents" / "train_grpo.py"), *flags, *extra,
                               "--output_dir", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=1200)
        assert done.returncode == 0, done.stderr[-3000:]
        logged[name] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for key in ("rollout/task_ids", "rollout/generated_tokens", "reward/mean", "eval/success", "eval/tasks",
                "queue/demonstrations_admitted", "update/loss"):
        assert [r.get(key) for r in logged["there"]] == [r.get(key) for r in logged["here"]], key
    assert logged["there"][-1]["eval/tasks"] == 2.0 and logged["there"][-1].get("eval/infra_errors", 0.0) == 0.0


def test_trl_rollout_with_env_servers_plays_what_it_plays_in_process(servers, policy):
    """``train_trl.py --env_servers``: the rollout's envs are remote, spread over the servers, and its groups
    (sampled from the same torch seed on both sides) come back with the same tokens and rewards."""
    from agents.trl import make_rollout_func
    from agents.trl.rollout import trl_groups
    from agents.trl.train import Args as TRLArgs
    from agents.trl.train import remote_envs

    env_kwargs = {"max_turns": 2, "step_timeout": 60.0, "prompt_style": "compact", "max_observation_chars": 200}
    here = TRLArgs(tasks="warmup-eval", num_envs=2)
    assert remote_envs(here, env_kwargs) is None
    there = remote_envs(dataclasses.replace(here, env_servers=",".join(s.url for s in servers)), env_kwargs)
    assert there is not None and [e._options["tasks"] for e in there.envs] == ["warmup-eval"] * 2
    assert [e.servers[0] for e in there.envs] == [f"{s.url}/ws" for s in servers]
    played = {}
    for name, envs in (("here", None), ("there", there)):
        rollout = make_rollout_func("warmup-eval", envs=envs, num_envs=2, env_kwargs=env_kwargs)
        try:
            groups = trl_groups(["warmup-eval-0001"] * 2 + ["warmup-eval-0004"] * 2, 2)
            torch.manual_seed(5)  # the rollout samples with the global generator
            rows, metrics = rollout._play_groups(policy, groups, 4, None)
            played[name] = per_task(rows)
            assert metrics["episodes"] == 4.0 and metrics["infra_errors"] == 0.0
        finally:
            rollout.close()
    assert played["there"] == played["here"]
