"""Environment tests: the gymnasium contract, whole scripted episodes with exact rewards, bad input."""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env

import toolr1_env
from toolr1_env import Task
from toolr1_env.env import ToolR1Env
from toolr1_env.judge import LLMJudge
from toolr1_env.sandbox import SandboxConfig

LIGHT = SandboxConfig(preload=())
TASKS = [Task("mul", "What is 17 * 23?", "391", level=0), Task("cap", "Capital of France?", "Paris")]


def make(**kwargs) -> gym.Env:
    kwargs.setdefault("tasks", TASKS)
    kwargs.setdefault("sandbox", LIGHT)
    return gym.make("ToolR1-GAIA-v0", **kwargs)


@pytest.fixture
def env():
    environment = make()
    yield environment
    environment.close()


def play(env, actions, task_id="mul"):
    env.reset(options={"task_id": task_id})
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
    return obs, reward, terminated, truncated, info


def test_check_env_passes_without_warnings_on_every_registered_id():
    ids = [env_id for env_id in gym.registry if env_id.startswith("ToolR1")]
    assert ids == [toolr1_env.ENV_ID]
    for env_id in ids:
        environment = gym.make(env_id, tasks=TASKS, sandbox=LIGHT)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(environment.unwrapped)
        environment.close()


def test_correct_answer_gets_full_reward(env):
    obs, reward, terminated, truncated, info = play(env, ["Thought: compute.\n```py\nx = 17 * 23\nprint(x)\n```",
                                                          "```python\nfinal_answer(x)\n```"])
    assert (terminated, truncated) == (True, False)
    assert reward == pytest.approx(1.2)
    assert info["reward_components"] == {"answer_score": 1.0, "exec_success": 1.0, "steps": 2, "errors": 0,
                                         "answered": True, "judge_raw": "question_scorer: True"}
    assert info["final_answer"] == "391" and "infra_error" not in info


def test_wrong_answer_gets_only_the_execution_part(env):
    _, reward, terminated, _, info = play(env, ["final_answer(390)"])
    assert terminated and reward == pytest.approx(0.2)
    assert info["reward_components"]["answer_score"] == 0.0


def test_code_errors_then_recovery(env):
    obs, reward, terminated, _, info = play(env, ["y = undefined_name", "y = 17 * 23", "final_answer(y)"])
    assert terminated and reward == pytest.approx(1.0 + 0.2 * 2 / 3)
    assert info["reward_components"]["errors"] == 1 and info["reward_components"]["steps"] == 3


def test_error_observation_carries_the_traceback(env):
    env.reset(options={"task_id": "mul"})
    obs, reward, terminated, truncated, info = env.step("a = 1\nb = a / 0")
    assert "ZeroDivisionError: division by zero" in obs and 'File "<step 1>", line 2' in obs
    assert (reward, terminated, truncated, info["error_type"]) == (0.0, False, False, "ZeroDivisionError")


def test_timeout_is_an_error_step_and_the_episode_continues():
    environment = make(step_timeout=1)
    try:
        environment.reset(options={"task_id": "mul"})
        obs, _, terminated, _, info = environment.step("while True:\n    pass")
        assert "did not finish within 1 seconds" in obs and not terminated and info["error_type"] == "TimeoutError"
        _, reward, terminated, _, info = environment.step("final_answer(17 * 23)")
        assert terminated and reward == pytest.approx(1.0 + 0.2 * 0.5)
    finally:
        environment.close()


def test_no_answer_before_the_turn_limit_is_truncated():
    environment = make(max_turns=3)
    try:
        obs, reward, terminated, truncated, info = play(environment, ["a = 1", "b = 2", "c = 3"])
        assert (terminated, truncated) == (False, True)
        assert reward == pytest.approx(0.2)
        assert info["reward_components"]["answered"] is False and info["final_answer"] is None
        with pytest.raises(ResetNeeded):
            environment.step("d = 4")
    finally:
        environment.close()


def test_max_episode_steps_from_make_is_the_turn_limit():
    environment = make(max_episode_steps=2)
    try:
        assert environment.unwrapped.max_turns == 2
        _, reward, _, truncated, info = play(environment, ["a = 1", "b = 2"])
        assert truncated and "reward_components" in info and reward == pytest.approx(0.2)
    finally:
        environment.close()


def test_no_answer_never_outscores_a_correct_one():
    with pytest.raises(ValueError, match="never out-scores"):
        ToolR1Env(tasks=TASKS, exec_weight=1.0, answer_weight=1.0)


def test_actions_without_code_get_a_format_error_observation(env):
    env.reset(options={"task_id": "mul"})
    obs, reward, terminated, _, info = env.step("I think the answer might be large.")
    assert obs.startswith("FormatError: no code found") and "```py" in obs
    assert info["error_type"] == "FormatError" and not terminated
    obs, *_ = env.step("```bash\nls\n```")
    assert obs.startswith("FormatError")


def test_prose_final_answer_ends_the_episode(env):
    _, reward, terminated, _, info = play(env, ["Thought: easy.\nFINAL ANSWER: 391"])
    assert terminated and info["final_answer"] == "391"
    assert reward == pytest.approx(1.0 + 0.2)


@pytest.mark.parametrize("action", ["", "\x00\x01garbage", "x = 1\n" * 300_000, "```py\n", "<code></code>",
                                    b"\xff\xfe not utf-8"])
def test_garbage_actions_become_observations_and_the_env_stays_usable(env, action):
    env.reset(options={"task_id": "mul"})
    obs, reward, terminated, truncated, info = env.step(action)
    assert isinstance(obs, str) and obs and not terminated and reward == 0.0
    assert info["error_type"] is not None
    obs, reward, terminated, *_ = env.step("final_answer(391)")
    assert terminated and reward > 1.0


def test_step_before_reset_and_unknown_task_id_raise_clear_errors():
    environment = ToolR1Env(tasks=TASKS, sandbox=LIGHT)
    with pytest.raises(ResetNeeded, match="call reset"):
        environment.step("print(1)")
    with pytest.raises(KeyError, match="no task 'nope'"):
        environment.reset(options={"task_id": "nope"})
    environment.close()


def test_non_string_action_is_a_caller_bug(env):
    env.reset(options={"task_id": "mul"})
    with pytest.raises(TypeError):
        env.step(42)


def test_reset_seed_picks_tasks_deterministically():
    env_a, env_b = make(), make()
    try:
        picks_a = [env_a.reset(seed=s)[1]["task_id"] for s in range(8)]
        picks_b = [env_b.reset(seed=s)[1]["task_id"] for s in range(8)]
        assert picks_a == picks_b and set(picks_a) == {"mul", "cap"}
    finally:
        env_a.close()
        env_b.close()


def test_attached_files_are_copied_and_named_in_the_prompt(tmp_path):
    data = tmp_path / "prices.csv"
    data.write_text("item,price\napple,3\npear,4\n")
    task = Task("csv", "What is the total price?", "7", files=(str(data),))
    environment = make(tasks=[task])
    try:
        prompt, info = environment.reset()
        assert "Attached files, in the current working directory: prices.csv" in prompt
        assert info == {"task_id": "csv", "level": 1}
        _, reward, *_ = environment.step("import csv\nfinal_answer(sum(int(r['price']) for r in "
                                         "csv.DictReader(open('prices.csv'))))")
        assert reward == pytest.approx(1.2)
    finally:
        environment.close()


def test_tools_are_callable_and_rendered_as_signatures():
    def convert(amount: float, rate: float = 2.0) -> float:
        """Convert an amount with a rate."""
        return amount * rate

    environment = make(tools=[convert])
    try:
        prompt, _ = environment.reset(options={"task_id": "mul"})
        assert 'def convert(amount: float, rate: float = 2.0) -> float:\n    """\n    Convert an amount' in prompt
        obs, *_ = environment.step("print(convert(3))")
        assert obs == "6.0"
    finally:
        environment.close()


def test_judge_outage_is_flagged_not_scored_silently():
    judge = LLMJudge(base_url="http://127.0.0.1:9/v1", model="judge", max_retries=0, timeout=2,
                     exact_match_shortcut=False)
    environment = make(judge=judge)
    try:
        _, reward, terminated, _, info = play(environment, ["final_answer(391)"])
        assert terminated and info["infra_error"]
        assert info["reward_components"]["answer_score"] == 0.0
    finally:
        environment.close()


def test_long_observations_are_truncated_head_and_tail():
    environment = make(max_observation_chars=200)
    try:
        environment.reset(options={"task_id": "mul"})
        obs, *_ = environment.step("print('a' * 1000 + 'END')")
        assert len(obs) < 300 and obs.endswith("END") and "characters truncated" in obs
    finally:
        environment.close()


def test_render_ansi_shows_the_episode():
    environment = make(render_mode="ansi")
    try:
        environment.reset(options={"task_id": "mul"})
        environment.step("print(6 * 7)")
        text = environment.render()
        assert "Task: What is 17 * 23?" in text and "print(6 * 7)" in text and "\n42" in text
    finally:
        environment.close()


def _kill_fork_server(env: ToolR1Env) -> None:
    """Kill the sandbox's fork server from outside, as an OOM killer or an operator would."""
    import os
    import signal

    zygote = env.sandbox._zygote
    assert zygote is not None and zygote.poll() is None
    os.kill(zygote.pid, signal.SIGKILL)
    zygote.wait(timeout=10)


def test_fork_server_killed_mid_episode_is_a_sandbox_infra_error_and_the_next_episode_works() -> None:
    task = Task("k", "What is 6 * 7?", "42")
    env = ToolR1Env(tasks=[task], max_turns=4, step_timeout=5)
    try:
        env.reset(options={"task_id": "k"})
        assert env.step("```py\nx = 6 * 7\nprint(x)\n```")[0].strip() == "42"
        _kill_fork_server(env)
        obs, reward, terminated, truncated, info = env.step("```py\nfinal_answer(x)\n```")
        assert (reward, terminated, truncated) == (0.0, False, True)  # ended at once, not blamed on the model
        assert info["infra_kind"] == "sandbox" and "fork server" in info["infra_error"]
        assert info["error_type"] == "SandboxError" and "not your code" in obs
        env.reset(options={"task_id": "k"})  # a working sandbox again
        obs, reward, terminated, _, info = env.step("```py\nfinal_answer(6 * 7)\n```")
        assert terminated and reward == pytest.approx(1.2) and "infra_error" not in info
    finally:
        env.close()


def test_fork_server_killed_between_episodes_is_recovered_at_reset() -> None:
    task = Task("k", "What is 6 * 7?", "42")
    env = ToolR1Env(tasks=[task], max_turns=2, step_timeout=5)
    try:
        env.reset(options={"task_id": "k"})
        _kill_fork_server(env)
        env.reset(options={"task_id": "k"})
        assert env.step("```py\nprint(6 * 7)\n```")[0].strip() == "42"
    finally:
        env.close()
