"""``toolr1_env.integrations.trl``: dataset rows, the ``environment_factory`` class on its own, and TRL's real
GRPOTrainer driving it through JSON tool calls (a tiny model scripted to call the tool)."""

from __future__ import annotations

import inspect
import json

import pytest
from gymnasium.error import ResetNeeded

from toolr1_env import Task
from toolr1_env.env import ToolR1Env, resolve_tasks
from toolr1_env.integrations.trl import ToolR1Environment, row_task_id, task_rows
from toolr1_env.judge import LLMJudge

TASK = Task("mul", "What is 17 * 23?", "391", level=0, reference_solution="final_answer(17 * 23)")


def test_rows_carry_the_task_id_in_the_prompt_and_in_a_column():
    rows = task_rows("warmup-eval")
    assert len(rows) == 64 and row_task_id(rows[0]["prompt"]) == rows[0]["task_id"] == "warmup-eval-0000"
    assert rows[0]["prompt"] == [{"role": "user", "content": "", "task_id": "warmup-eval-0000"}]
    assert [r["task_id"] for r in task_rows("warmup-eval", size=2)] == ["warmup-eval-0000", "warmup-eval-0001"]
    generated = task_rows("warmup", size=3)  # a generated split: the tasks of seeds 0..2, our learner's pool
    assert [r["task_id"] for r in generated] == [resolve_tasks("warmup").pick(s).task_id for s in range(3)]
    with pytest.raises(ValueError, match="size"):
        task_rows("warmup")
    assert row_task_id({"task_id": "x"}) == "x"
    with pytest.raises(ValueError, match="task_dataset"):
        row_task_id([{"role": "user", "content": "no id"}])


def test_environment_runs_code_persistently_and_pays_the_env_reward():
    env = ToolR1Environment([TASK], max_turns=5)
    prompt = env.reset(task_id="mul", prompt=[], level=0)
    assert "What is 17 * 23?" in prompt and "`python` tool" in prompt and "final_answer" in prompt
    env.python("x = 17 * 23")
    assert env.python("print(x)").strip() == "391"  # the interpreter persists between tool calls
    assert "ZeroDivisionError" in env.python("1 / 0")  # errors come back for the model to read
    assert "ended" in env.python("final_answer(x)")
    assert env.python("print(1)").startswith("The task has already ended")
    assert env.get_reward() == pytest.approx(1.0 + 0.2 * 3 / 4)  # the answer + the share of clean steps
    # TRL exposes every public method but reset/get_reward as a tool: only `python`.
    tools = [name for name, _ in inspect.getmembers(ToolR1Environment, inspect.isfunction)
             if not name.startswith("_") and name not in ("reset", "get_reward")]
    assert tools == ["python"]


def test_unanswered_episode_is_ended_by_get_reward_and_judge_outages_are_not_scored():
    env = ToolR1Environment([TASK], max_turns=4)
    env.reset(task_id="mul")
    env.python("print('thinking')")
    assert env.get_reward() == pytest.approx(0.2)  # no answer: the execution part only, as at the turn limit
    assert env.info["reward_components"]["answered"] is False
    judge = LLMJudge(base_url="http://127.0.0.1:9/v1", model="x", max_retries=0, timeout=1, exact_match_shortcut=False)
    down = ToolR1Environment([TASK], judge=judge)
    down.reset(task_id="mul")
    down.python("final_answer(391)")
    assert down.get_reward() is None and "judge" in down.info["infra_error"]


def test_end_episode_pays_like_truncation_and_checks_its_preconditions():
    env = ToolR1Env(tasks=[TASK], max_turns=3)
    try:
        with pytest.raises(ResetNeeded):
            env.end_episode()
        env.reset(options={"task_id": "mul"})
        env.step("```py\nprint(1)\n```")
        reward, info = env.end_episode()
        assert reward == pytest.approx(0.2) and info["final_answer"] is None and info["turn"] == 1
        with pytest.raises(ResetNeeded):
            env.end_episode()
    finally:
        env.close()


def test_trl_trains_with_the_environment_factory_through_json_tool_calls(tmp_path):
    pytest.importorskip("trl", reason="TRL is not installed: pip install -e '.[trl]'")
    from trl_harness import capture_batches, logged, row, scripted_model, tool_calling_tokenizer, trainer

    from agents.learner.model_loading import make_tiny_model
    from toolr1_env.integrations.trl import task_dataset

    tokenizer = tool_calling_tokenizer(make_tiny_model(seed=0)[1])
    call = json.dumps({"name": "python", "arguments": {"code": TASK.reference_solution}})
    model = scripted_model(tokenizer, [f"<tool_call>\n{call}\n</tool_call>", "Done."])
    grpo = trainer(model, tokenizer, task_dataset([TASK]), str(tmp_path), batch=2, group=2,
                   environment_factory=ToolR1Environment.factory([TASK], max_turns=2), max_completion_length=160)
    batches = capture_batches(grpo)
    grpo.train()
    # Episodes were played in our env: the tool ran the code in the sandbox and the answer was scored.
    assert logged(grpo, "tools/call_frequency") == [1.0, 1.0]
    assert all(e.info["final_answer"] == "391" for e in grpo.environments)
    # The env's reward reached the trainer as its own reward column.
    assert logged(grpo, "rewards/ToolR1Environment/mean") == [pytest.approx(1.2)] * 2
    # TRL masked the tool's output: the tokens of the <tool_response> block are out of the loss.
    ids, mask = row(batches[-1], 0, "completion_ids"), row(batches[-1], 0, "tool_mask")
    text = tokenizer.decode(ids)
    assert "<tool_response>" in text and "391" in text
    response = [i for i in range(len(ids)) if "final_answer received" in tokenizer.decode(ids[: i + 1])][0]
    assert mask[response] == 0 and mask[0] == 1 and 0 < sum(mask) < len(mask)
