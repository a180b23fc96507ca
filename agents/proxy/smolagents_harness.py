"""smolagents' unchanged ``CodeAgent`` as a proxy harness: its own loop and prompts, our sandbox, our learner.

:class:`CodeAgentHarness` is a :data:`~agents.proxy.harness.Harness`: for each episode it builds a
``CodeAgent`` whose model is smolagents' own ``OpenAIServerModel`` pointed at the episode's proxy URL and
whose executor is :class:`~toolr1_env.integrations.smolagents.SandboxExecutor` (reused across episodes
through a pool, reset with the task's files), runs ``agent.run(question)``, and reports the answer and
the agent's steps: every ``ActionStep`` is a step, and a step with an error (code that raised, or a reply
smolagents could not parse into code) is a failed step, as the env counts them.

The system prompt. smolagents' default ``CodeAgent`` prompt is long (see :func:`default_prompt_tokens`:
about two thousand tokens of examples) and written for capable models. ``system_prompt=None`` keeps it;
the CPU demo passes :data:`COMPACT_SYSTEM_PROMPT` through ``prompt_templates``, a ``CodeAgent``
constructor argument, so the agent class, its loop and its parsing stay smolagents' own.
"""

from __future__ import annotations

import importlib.resources
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from agents.proxy.harness import HarnessCall, HarnessResult
from toolr1_env.sandbox import SandboxConfig

#: A short system prompt for small models (a Jinja template, as smolagents' own; one worked example).
COMPACT_SYSTEM_PROMPT = """You solve tasks by writing Python code. Reply with one short thought, then code \
between <code> and </code>. Print what you need to see. Call final_answer(answer) with the answer when done.

Example.
Task: What is 12 * 7?
Thought: I compute it with Python.
<code>
result = 12 * 7
final_answer(result)
</code>"""


def prompt_templates(system_prompt: str | None) -> dict[str, Any] | None:
    """smolagents' ``CodeAgent`` templates with ``system_prompt`` swapped in (None: smolagents' own, unchanged)."""
    if system_prompt is None:
        return None
    import yaml

    text = importlib.resources.files("smolagents.prompts").joinpath("code_agent.yaml").read_text()
    templates = yaml.safe_load(text)
    templates["system_prompt"] = system_prompt
    return templates


def default_prompt_tokens(tokenizer: Any) -> int:
    """Tokens of smolagents' default ``CodeAgent`` system prompt template (before tools are filled in)."""
    text = importlib.resources.files("smolagents.prompts").joinpath("code_agent.yaml").read_text()
    import yaml

    return len(tokenizer(yaml.safe_load(text)["system_prompt"], add_special_tokens=False)["input_ids"])


@dataclass
class AgentSteps:
    """What one ``CodeAgent`` run did, read from its memory."""

    steps: int
    errors: int
    answered: bool


def count_steps(agent: Any) -> AgentSteps:
    """Steps and failed steps of a finished ``CodeAgent`` run, and whether its code called ``final_answer``."""
    from smolagents.memory import ActionStep

    actions = [s for s in agent.memory.steps if isinstance(s, ActionStep)]
    errors = sum(s.error is not None for s in actions)
    return AgentSteps(len(actions), errors, any(s.is_final_answer for s in actions))


class CodeAgentHarness:
    """Run smolagents' ``CodeAgent`` for one task through the proxy (see the module docstring).

    Args:
        max_steps: the agent's step limit (``CodeAgent(max_steps=...)``).
        max_tokens: completion budget per call, sent as ``max_tokens``.
        system_prompt: None keeps smolagents' prompt; a string replaces its system prompt template.
        sandbox: the executor's sandbox limits.
        stream: use the model's streaming API (``CodeAgent(stream_outputs=True)``).
        request_timeout: seconds the agent's OpenAI client waits for one proxy call. A call that times out
            crashes the episode, an infrastructure error left out of training: raise it where sampling is slow
            (a CPU shared with other jobs, many episodes queued behind one sampling thread).
    """

    def __init__(self, *, max_steps: int = 3, max_tokens: int = 96, system_prompt: str | None = COMPACT_SYSTEM_PROMPT,
                 sandbox: SandboxConfig | None = None, stream: bool = False, request_timeout: float = 600.0) -> None:
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self.templates = prompt_templates(system_prompt)
        self.sandbox = sandbox or SandboxConfig(preload=(), step_timeout=5.0)
        self.stream = stream
        self.request_timeout = request_timeout
        self._executors: queue.SimpleQueue = queue.SimpleQueue()
        self._all: list[Any] = []
        # Sandboxes are started by this one long-lived thread: bubblewrap's --die-with-parent ends a sandbox
        # when the *thread* that started it exits, and harness episodes run in short-lived pool threads.
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-starter")

    def _executor(self, files: list[str]) -> Any:
        from toolr1_env.integrations.smolagents import SandboxExecutor

        try:
            executor = self._executors.get_nowait()
        except queue.Empty:
            executor = self._starter.submit(SandboxExecutor, config=self.sandbox, files=files).result()
            self._all.append(executor)
            return executor
        self._starter.submit(executor.reset, files=files).result()  # may restart a dead fork server
        return executor

    def __call__(self, call: HarnessCall) -> HarnessResult:
        """Play ``call.task`` with a fresh ``CodeAgent``; return its answer and step counts."""
        from smolagents import CodeAgent, OpenAIServerModel
        from smolagents.monitoring import LogLevel

        model = OpenAIServerModel(model_id=call.model, api_base=call.base_url, api_key=call.api_key,
                                  max_tokens=self.max_tokens,
                                  client_kwargs={"max_retries": 0, "timeout": self.request_timeout})
        executor = self._executor(list(call.task.files))
        try:
            agent = CodeAgent(tools=[], model=model, executor=executor, max_steps=self.max_steps,
                              verbosity_level=LogLevel.OFF, prompt_templates=self.templates,
                              stream_outputs=self.stream)
            answer = agent.run(call.task.question)
            counted = count_steps(agent)
        finally:
            self._executors.put(executor)  # not agent.cleanup(): the pooled sandbox serves the next episode
        text = None if answer is None else str(answer)
        return HarnessResult(text if counted.answered else None, counted.steps, counted.errors,
                             truncated=not counted.answered)

    def close(self) -> None:
        """Stop every pooled sandbox."""
        for executor in self._all:
            executor.cleanup()
        self._all.clear()
        self._starter.shutdown()
