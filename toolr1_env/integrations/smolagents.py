"""Our sandbox as a smolagents Python executor: ``CodeAgent(..., executor=SandboxExecutor())``.

smolagents' default ``LocalPythonExecutor`` interprets the model's code in the agent's own process: it is
not a security boundary (CVE-2025-5120, CVE-2025-9959) and its thread-based timeout can hang or fail to
stop a computation. :class:`SandboxExecutor` implements smolagents' ``PythonExecutor`` interface
(``send_tools``, ``send_variables``, ``__call__`` returning a ``CodeOutput``, plus ``state`` and ``cleanup``)
on :class:`toolr1_env.sandbox.Sandbox`: the code runs in a separate, confined, killable worker
process (see that package's "what is covered"), variables and imports persist between steps, and a
timeout restarts the worker in milliseconds.

How smolagents' pieces map:

* **Tools** (``send_tools``) stay in the agent's process as sandbox *host tools*: the code calls a stub,
  the arguments and the result cross the worker channel as plain data (JSON), so API keys, network clients
  and managed agents never enter the sandbox. Changing the tool set restarts the worker (its variables are
  lost, the sent variables are sent again).
* **final_answer.** Inside the sandbox ``final_answer(...)`` serialises its arguments (smolagents'
  ``SafeSerializer`` format: text, numbers, lists, dicts, tuples, bytes, numpy arrays, PIL images) and ends
  the step with a ``BaseException``, which ``except Exception`` in the model's code cannot swallow; the
  host then calls the agent's own ``final_answer`` tool on the decoded arguments, so a custom
  ``FinalAnswerTool`` (other inputs, a post-processing ``forward``) works unchanged.
* **Errors** (an exception, a syntax error, a timeout, a killed worker) raise smolagents'
  ``AgentExecutionError`` whose message is the traceback written for the model; the prints made before
  the error are in ``state["_print_outputs"]``, where ``CodeAgent`` looks for them.
* **Output.** ``CodeOutput.output`` is the ``repr`` text of a trailing expression (values never leave the
  sandbox as objects) or the final answer's value; ``logs`` is what the code printed (stderr appended).
* **Imports**: the sandbox's allowlist plus ``additional_imports`` (``"*"`` allows any import; the
  operating-system layers remain the boundary either way).

For RL episodes, :meth:`SandboxExecutor.reset` starts a fresh namespace in a fresh working directory
holding the task's files, and ``steps``/``errors`` count the episode's code steps for the env's
execution reward. Needs ``pip install smolagents`` (the ``smolagents`` extra).

Threads: under bubblewrap (``--die-with-parent``) a sandbox lives as long as the *thread* that started it
(construction, and ``send_tools`` with a new tool set). Build the executor in a thread that outlives its
use, as ``agents.proxy.smolagents_harness`` does with one long-lived starter thread.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from smolagents.local_python_executor import CodeOutput, PythonExecutor
from smolagents.monitoring import AgentLogger, LogLevel
from smolagents.serialization import SafeSerializer
from smolagents.utils import AgentExecutionError

from toolr1_env.sandbox import ExecResult, Sandbox, SandboxConfig

#: The prefix that marks a final answer serialised by :data:`FINAL_ANSWER_PRELUDE`.
ANSWER_PREFIX = "smolagents-json:"

#: Runs in every fresh worker (with the real importer) before the agent's first step: ``final_answer``
#: serialises its arguments in smolagents' JSON-safe format and hands them to the sandbox's own one.
FINAL_ANSWER_PRELUDE = '''
import base64 as _sa_base64, io as _sa_io, json as _sa_json
_sa_submit = final_answer

def _sa_safe(obj):
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, list):
        return [_sa_safe(x) for x in obj]
    if isinstance(obj, tuple):
        return {"__type__": "tuple", "data": [_sa_safe(x) for x in obj]}
    if isinstance(obj, (set, frozenset)):
        return {"__type__": type(obj).__name__, "data": [_sa_safe(x) for x in obj]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _sa_safe(v) for k, v in obj.items()}
        return {"__type__": "dict_with_complex_keys", "data": [[_sa_safe(k), _sa_safe(v)] for k, v in obj.items()]}
    if isinstance(obj, bytes):
        return {"__type__": "bytes", "data": _sa_base64.b64encode(obj).decode()}
    if isinstance(obj, complex):
        return {"__type__": "complex", "real": obj.real, "imag": obj.imag}
    module = type(obj).__module__ or ""
    if module.startswith("PIL.") and hasattr(obj, "save"):
        buffer = _sa_io.BytesIO()
        obj.save(buffer, format="PNG")
        return {"__type__": "PIL.Image", "data": _sa_base64.b64encode(buffer.getvalue()).decode()}
    if module == "numpy" and hasattr(obj, "tolist"):
        if hasattr(obj, "dtype") and getattr(obj, "ndim", 0):
            return {"__type__": "ndarray", "data": obj.tolist(), "dtype": str(obj.dtype)}
        return obj.item()
    return str(obj)

def final_answer(*args, **kwargs):
    """Submit the final answer; this ends the task."""
    _sa_submit("smolagents-json:" + _sa_json.dumps({"args": _sa_safe(list(args)), "kwargs": _sa_safe(kwargs)}))
'''


def host_tool(tool: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A smolagents ``Tool`` (or managed agent) as a plain host callable with its inputs as the signature."""
    inputs = getattr(tool, "inputs", None)

    def call(*args: Any, **kwargs: Any) -> Any:
        return tool(*args, **kwargs)

    call.__name__ = name
    call.__doc__ = getattr(tool, "description", None) or inspect.getdoc(tool) or ""
    if isinstance(inputs, Mapping):
        params = [inspect.Parameter(key, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=None if spec.get("nullable") else inspect.Parameter.empty)
                  for key, spec in inputs.items()]
        params.sort(key=lambda p: p.default is not inspect.Parameter.empty)  # required ones first
        call.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return call


class SandboxExecutor(PythonExecutor):
    """smolagents' ``PythonExecutor`` on :class:`~toolr1_env.sandbox.Sandbox` (see the module docstring).

    Args:
        additional_imports: modules allowed besides the sandbox's allowlist (``"*"``: any import).
        logger: smolagents' ``AgentLogger`` for error messages (default: a silent one).
        config: the sandbox's limits (timeout per step, memory, network...); default ``SandboxConfig()``.
        files: host files copied into the first episode's working directory.
    """

    def __init__(self, additional_imports: Sequence[str] = (), logger: AgentLogger | None = None, *,
                 config: SandboxConfig | None = None, files: Iterable[str] = ()) -> None:
        config = config or SandboxConfig()
        extra = list(additional_imports)
        if "*" in extra or config.allowed_imports is None:
            allowed = None
        else:
            allowed = tuple(dict.fromkeys([*config.allowed_imports, *(m.split(".")[0] for m in extra)]))
        self.config = replace(config, allowed_imports=allowed)
        self.logger = logger or AgentLogger(level=LogLevel.OFF)
        self.state: dict[str, Any] = {"_print_outputs": ""}
        self.steps = 0
        self.errors = 0
        self._tools: dict[str, Callable[..., Any]] = {}
        self._final_answer: Callable[..., Any] | None = None
        self._variables: dict[str, Any] = {}
        self._files = list(files)
        self.sandbox = self._new_sandbox()

    def _new_sandbox(self) -> Sandbox:
        tools = {name: host_tool(tool, name) for name, tool in self._tools.items()}
        sandbox = Sandbox(self.config, tools=tools, prelude=FINAL_ANSWER_PRELUDE)
        sandbox.reset(files=self._files)
        return sandbox

    # -- smolagents' interface ---------------------------------------------------------------------
    def send_tools(self, tools: dict[str, Any]) -> None:
        """Keep ``final_answer`` for the host side of answers; serve every other tool as a host tool."""
        self._final_answer = tools.get("final_answer")
        others = {name: tool for name, tool in tools.items() if name != "final_answer"}
        if others.keys() != self._tools.keys() or any(others[n] is not self._tools[n] for n in others):
            self._tools = others
            self.sandbox.close()
            self.sandbox = self._new_sandbox()
            self._inject(self._variables)

    def send_variables(self, variables: dict[str, Any]) -> None:
        """Define ``variables`` in the sandbox's namespace (JSON values only: nothing else crosses over)."""
        if not variables:
            return
        for name, value in variables.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"variable name {name!r} is not a Python identifier")
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise TypeError(f"variable {name!r} ({type(value).__name__}) is not JSON data; the sandbox "
                                "receives only str, numbers, bools, None, lists and dicts") from None
        self._variables.update(variables)
        self._inject(variables)

    def __call__(self, code_action: str) -> CodeOutput:
        """Run one step; raise ``AgentExecutionError`` (the model's traceback) when the code failed."""
        result = self.sandbox.run(code_action)
        self.steps += 1
        logs = result.stdout + (f"\n[stderr]\n{result.stderr}" if result.stderr else "")
        self.state["_print_outputs"] = logs
        if not result.ok:
            self.errors += 1
            raise AgentExecutionError(result.error or "the code failed", self.logger)
        if result.final_answer_called:
            return CodeOutput(output=self._answer(result), logs=logs, is_final_answer=True)
        return CodeOutput(output=result.value, logs=logs, is_final_answer=False)

    def cleanup(self) -> None:
        """Stop the sandbox and delete its files (``CodeAgent.cleanup`` calls this)."""
        self.sandbox.close()

    # -- episodes ----------------------------------------------------------------------------------
    def reset(self, files: Iterable[str] = ()) -> None:
        """A new episode: fresh namespace and working directory (holding ``files``), counters at 0."""
        self._files = list(files)
        self.sandbox.reset(files=self._files)
        self.steps = self.errors = 0
        self.state["_print_outputs"] = ""
        self._inject(self._variables)

    def _inject(self, variables: Mapping[str, Any]) -> None:
        if not variables:
            return
        code = f"import json as _sa_vars\nglobals().update(_sa_vars.loads({json.dumps(dict(variables))!r}))"
        result = self.sandbox.run(code)
        if not result.ok:
            raise RuntimeError(f"could not define the variables in the sandbox: {result.error}")

    def _answer(self, result: ExecResult) -> Any:
        """The final answer's value: the agent's ``final_answer`` tool applied to the decoded arguments."""
        raw = result.final_answer or ""
        if not raw.startswith(ANSWER_PREFIX):  # the sandbox's own final_answer (e.g. called by a host tool)
            return raw
        try:
            payload = SafeSerializer.from_json_safe(json.loads(raw[len(ANSWER_PREFIX):]))
        except ValueError:
            raise AgentExecutionError("final_answer's value was cut (over 20,000 characters serialised); "
                                      "submit a shorter answer", self.logger) from None
        args, kwargs = payload["args"], payload["kwargs"]
        if self._final_answer is None:
            return args[0] if args else next(iter(kwargs.values()), None)
        return self._final_answer(*args, **kwargs)
