"""Our sandbox as a smolagents executor: smolagents' own executor tests, then what an RL episode needs.

``TestSmolagentsExecutorSuite`` is smolagents' ``CommonDockerExecutorIntegration`` (huggingface/smolagents,
``tests/test_remote_executors.py`` at e3a5b89, Apache-2.0), the suite its Docker and Modal executors must
pass, copied unchanged except for the fixture that builds the executor. The tests after it cover what that
suite does not: errors after prints, timeouts, host tools, variables, reset, and an unchanged ``CodeAgent``.
smolagents is required (``pip install -e .[smolagents]``): without it these tests fail at import, on purpose.
"""

from __future__ import annotations

import io
from textwrap import dedent

import PIL.Image
import pytest
from rich.console import Console
from smolagents import CodeAgent, Tool
from smolagents.default_tools import FinalAnswerTool
from smolagents.models import ChatMessage, MessageRole, Model
from smolagents.monitoring import AgentLogger, LogLevel
from smolagents.utils import AgentError

from toolr1_env.integrations.smolagents import SandboxExecutor
from toolr1_env.sandbox import SandboxConfig

CONFIG = SandboxConfig(preload=("numpy",), step_timeout=5.0)


@pytest.fixture(scope="module")
def shared_executor():
    executor = SandboxExecutor(additional_imports=["PIL", "numpy"],
                               logger=AgentLogger(LogLevel.INFO, Console(force_terminal=False, file=io.StringIO())),
                               config=CONFIG)
    yield executor
    executor.cleanup()


class TestSmolagentsExecutorSuite:
    """smolagents' ``CommonDockerExecutorIntegration``, verbatim below the fixture."""

    @pytest.fixture(autouse=True)
    def set_executor(self, shared_executor):
        shared_executor.reset()
        self.executor = shared_executor

    def test_state_persistence(self):
        """Test that variables and imports form one snippet persist in the next"""
        code_action = "import numpy as np; a = 2"
        self.executor(code_action)

        code_action = "print(np.sqrt(a))"
        code_output = self.executor(code_action)
        assert "1.41421" in code_output.logs

    def test_execute_output(self):
        """Test execution that returns a string"""
        self.executor.send_tools({"final_answer": FinalAnswerTool()})
        code_action = 'final_answer("This is the final answer")'
        code_output = self.executor(code_action)
        assert code_output.output == "This is the final answer", "Result should be 'This is the final answer'"

    def test_execute_multiline_output(self):
        """Test execution that returns a string"""
        self.executor.send_tools({"final_answer": FinalAnswerTool()})
        code_action = 'result = "This is the final answer"\nfinal_answer(result)'
        code_output = self.executor(code_action)
        assert code_output.output == "This is the final answer", "Result should be 'This is the final answer'"

    def test_execute_image_output(self):
        """Test execution that returns a base64 image"""
        self.executor.send_tools({"final_answer": FinalAnswerTool()})
        code_action = dedent("""
            import base64
            from PIL import Image
            from io import BytesIO
            image = Image.new("RGB", (10, 10), (255, 0, 0))
            final_answer(image)
        """)
        code_output = self.executor(code_action)
        assert isinstance(code_output.output, PIL.Image.Image), "Result should be a PIL Image"

    def test_syntax_error_handling(self):
        """Test handling of syntax errors"""
        code_action = 'print("Missing Parenthesis'  # Syntax error
        with pytest.raises(AgentError) as exception_info:
            self.executor(code_action)
        assert "SyntaxError" in str(exception_info.value), "Should raise a syntax error"

    @pytest.mark.parametrize(
        "code_action, expected_result",
        [
            (
                dedent('''
                    final_answer("""This is
                    a multiline
                    final answer""")
                '''),
                "This is\na multiline\nfinal answer",
            ),
            (
                dedent("""
                    text = '''Text containing
                    final_answer(5)
                    '''
                    final_answer(text)
                """),
                "Text containing\nfinal_answer(5)\n",
            ),
            (
                dedent("""
                    num = 2
                    if num == 1:
                        final_answer("One")
                    elif num == 2:
                        final_answer("Two")
                """),
                "Two",
            ),
        ],
    )
    def test_final_answer_patterns(self, code_action, expected_result):
        self.executor.send_tools({"final_answer": FinalAnswerTool()})
        code_output = self.executor(code_action)
        assert code_output.is_final_answer is True
        assert code_output.output == expected_result

    def test_custom_final_answer(self):
        class CustomFinalAnswerTool(FinalAnswerTool):
            def forward(self, answer: str) -> str:
                return "CUSTOM" + answer

        self.executor.send_tools({"final_answer": CustomFinalAnswerTool()})
        code_action = dedent("""
            final_answer(answer="_answer")
        """)
        code_output = self.executor(code_action)
        assert code_output.is_final_answer is True
        assert code_output.output == "CUSTOM_answer"

    def test_custom_final_answer_with_custom_inputs(self):
        class CustomFinalAnswerToolWithCustomInputs(FinalAnswerTool):
            inputs = {
                "answer1": {"type": "string", "description": "First part of the answer."},
                "answer2": {"type": "string", "description": "Second part of the answer."},
            }

            def forward(self, answer1: str, answer2: str) -> str:
                return answer1 + "CUSTOM" + answer2

        self.executor.send_tools({"final_answer": CustomFinalAnswerToolWithCustomInputs()})
        code_action = dedent("""
            final_answer(
                answer1="answer1_",
                answer2="_answer2"
            )
        """)
        code_output = self.executor(code_action)
        assert code_output.is_final_answer is True
        assert code_output.output == "answer1_CUSTOM_answer2"


# ------------------------------------------------------------------------------ beyond smolagents' suite


def test_prints_before_an_error_reach_the_agent_and_the_error_is_for_the_model(shared_executor):
    shared_executor.reset()
    with pytest.raises(AgentError) as error:
        shared_executor("print('step one done')\nx = 1 / 0")
    assert "ZeroDivisionError" in str(error.value) and "x = 1 / 0" in str(error.value)
    assert shared_executor.state["_print_outputs"] == "step one done\n"
    output = shared_executor("print(x if 'x' in globals() else 'no x'); 6 * 7")
    assert output.logs == "no x\n" and output.output == "42" and not output.is_final_answer
    assert (shared_executor.steps, shared_executor.errors) == (2, 1)


def test_except_exception_cannot_swallow_final_answer(shared_executor):
    shared_executor.reset()
    shared_executor.send_tools({"final_answer": FinalAnswerTool()})
    output = shared_executor("try:\n    final_answer(391)\nexcept Exception:\n    pass\nprint('not reached')")
    assert output.is_final_answer and output.output == 391 and "not reached" not in output.logs


def test_a_hung_step_is_killed_and_the_next_step_runs(shared_executor):
    shared_executor.reset()
    with pytest.raises(AgentError, match="TimeoutError"):
        shared_executor("while True:\n    pass")
    assert shared_executor("print('alive')").logs == "alive\n"


class Multiply(Tool):
    name = "multiply"
    description = "Multiply two integers."
    inputs = {"a": {"type": "integer", "description": "first"}, "b": {"type": "integer", "description": "second"}}
    output_type = "integer"

    def forward(self, a: int, b: int) -> int:
        self.calls = getattr(self, "calls", 0) + 1
        return a * b


def test_tools_run_on_the_host_and_variables_cross_as_json():
    tool = Multiply()
    executor = SandboxExecutor(config=CONFIG)
    try:
        executor.send_variables({"base": 17, "names": ["a", "b"]})
        executor.send_tools({"multiply": tool, "final_answer": FinalAnswerTool()})  # restarts the worker
        output = executor("final_answer(multiply(base, b=23) + len(names))")
        assert output.output == 393 and tool.calls == 1  # the tool ran here, in the host process
        with pytest.raises(AgentError, match="os"):  # outside the allowlist: the model reads why
            executor("import os")
        with pytest.raises(TypeError, match="not JSON data"):
            executor.send_variables({"image": PIL.Image.new("RGB", (1, 1))})
    finally:
        executor.cleanup()


def test_reset_gives_a_fresh_namespace_with_the_tasks_files(tmp_path, shared_executor):
    data = tmp_path / "prices.csv"
    data.write_text("item,price\napple,3\n")
    shared_executor("leftover = 1")
    shared_executor.reset(files=[str(data)])
    output = shared_executor("import pandas as pd\nprint(pd.read_csv('prices.csv').price.sum(), 'leftover' in dir())")
    assert output.logs == "3 False\n" and shared_executor.steps == 1


class ScriptedModel(Model):
    """A model that replies with fixed texts (smolagents' own tests use the same kind of fake)."""

    def __init__(self, replies):
        super().__init__(model_id="scripted")
        self.replies = list(replies)

    def generate(self, messages, stop_sequences=None, **kwargs):
        return ChatMessage(role=MessageRole.ASSISTANT, content=self.replies.pop(0))


def test_an_unchanged_code_agent_runs_its_steps_in_the_sandbox():
    executor = SandboxExecutor(config=CONFIG)
    model = ScriptedModel(["Thought: compute.\n<code>\nx = 17 * 23\nprint(x)\n</code>",
                           "Thought: bad name.\n<code>\nprint(y)\n</code>",
                           "Thought: answer.\n<code>\nfinal_answer(x)\n</code>"])
    agent = CodeAgent(tools=[], model=model, executor=executor, max_steps=4, verbosity_level=LogLevel.OFF)
    try:
        assert agent.run("What is 17 * 23?") == 391
        steps = [s for s in agent.memory.steps if hasattr(s, "observations") and s.step_number]
        assert "391" in steps[0].observations and "NameError" in str(steps[1].error)
        assert (executor.steps, executor.errors) == (3, 1)
    finally:
        agent.cleanup()
