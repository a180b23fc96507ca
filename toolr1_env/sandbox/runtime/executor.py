"""Run agent code in a persistent namespace, like one notebook kernel per episode.

Per call: compile (a syntax error becomes an error record), execute all statements, evaluate a trailing
expression and keep its ``repr`` (as a notebook would show it), capture ``print`` output with a cap that
keeps the head and the tail, and format errors for a model to read: the offending line of the agent's
own code and the exception, without the frames of this module.
"""

from __future__ import annotations

import ast
import builtins
import io
import linecache
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any


class FinalAnswerSignal(BaseException):
    """Raised by ``final_answer``; a ``BaseException`` so ``except Exception`` in agent code cannot eat it."""


class ToolError(Exception):
    """A host-side tool failed; the message is the tool's error, for the model to read."""


# Shown to the model as plain ``ToolError`` / ``FinalAnswerSignal``, without this runtime's module path.
ToolError.__module__ = FinalAnswerSignal.__module__ = "builtins"


class CappedText(io.TextIOBase):
    """A text sink that keeps the first ``head`` and the last ``tail`` characters of what is written."""

    def __init__(self, head: int, tail: int) -> None:
        self.head_limit, self.tail_limit = head, tail
        self.head: list[str] = []
        self.head_size = 0
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.total = 0

    def writable(self) -> bool:
        """Always writable."""
        return True

    def write(self, text: str) -> int:
        """Record ``text``, dropping the middle once the caps are reached."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        written = len(text)
        self.total += written
        if self.head_size < self.head_limit:
            piece = text[: self.head_limit - self.head_size]
            self.head.append(piece)
            self.head_size += len(piece)
            text = text[len(piece):]
        if text and self.tail_limit:
            self.tail.append(text[-self.tail_limit:])
            self.tail_size += len(self.tail[-1])
            while self.tail_size - len(self.tail[0]) >= self.tail_limit:
                self.tail_size -= len(self.tail.popleft())
        return written

    def getvalue(self) -> str:
        """The kept text, with a marker saying how much was cut from the middle."""
        head = "".join(self.head)
        tail = "".join(self.tail)[-self.tail_limit:] if self.tail_limit else ""
        dropped = self.total - len(head) - len(tail)
        if dropped > 0:
            return f"{head}\n...[{dropped} characters truncated]...\n{tail}"
        return head + tail


def cap_text(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` within ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    sink = CappedText(limit // 2, limit - limit // 2)
    sink.write(text)
    return sink.getvalue()


def make_import_guard(allowed: list[str] | None) -> Callable[..., Any]:
    """An ``__import__`` that refuses top-level modules outside ``allowed`` (``None`` allows all).

    It guards ``import`` statements in agent code (and lazy imports that C code makes while agent code
    runs, which is why private ``_modules`` pass); modules imported by allowed libraries' own code use
    the real importer. This is a policy that gives the model a clear message, not a security boundary: the
    operating-system layers are the boundary.
    """
    real_import = builtins.__import__
    allowed_set = None if allowed is None else set(allowed)

    def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                       level: int = 0) -> Any:
        if level != 0:
            raise ImportError("relative imports are not available in the sandbox")
        top = name.partition(".")[0]
        # Private modules (``_strptime``, ``_decimal``...) are imported lazily by C code on behalf of
        # allowed modules, through this same hook and from the agent's frame: they must pass.
        if allowed_set is not None and top not in allowed_set and not top.startswith("_"):
            raise ImportError(
                f"import of {name!r} is not allowed in this sandbox. "
                f"Allowed modules: {', '.join(sorted(allowed_set))}")
        return real_import(name, globals, locals, fromlist, level)

    return guarded_import


class Session:
    """One episode's namespace plus the bookkeeping for ``final_answer`` and host tools."""

    def __init__(self, *, allowed_imports: list[str] | None, output_head: int, output_tail: int,
                 value_chars: int, call_tool: Callable[[str, list, dict], Any],
                 tools: list[dict[str, str]]) -> None:
        self.output_head, self.output_tail, self.value_chars = output_head, output_tail, value_chars
        self.final_answer: str | None = None
        self.final_answer_called = False
        self.step = 0
        safe_builtins = dict(vars(builtins))
        safe_builtins["__import__"] = make_import_guard(allowed_imports)
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": safe_builtins}
        self.namespace["final_answer"] = self._final_answer
        self.namespace["ToolError"] = ToolError
        for spec in tools:
            self.namespace[spec["name"]] = _make_tool_stub(spec, call_tool)
        self.reserved: frozenset[str] = frozenset()  # set by the worker once the prelude has run

    def _final_answer(self, answer: Any) -> None:
        """Submit the final answer and end the episode. Call it exactly once, with the answer."""
        if not self.final_answer_called:
            self.final_answer_called = True
            self.final_answer = cap_text(answer if isinstance(answer, str) else _safe_str(answer), 20_000)
        raise FinalAnswerSignal()

    def run_trusted(self, code: str) -> dict[str, Any]:
        """Run our own set-up code (the prelude) with the real importer instead of the guarded one."""
        guarded = self.namespace["__builtins__"]
        self.namespace["__builtins__"] = vars(builtins)
        try:
            return self.run(code)
        finally:
            self.namespace["__builtins__"] = guarded

    def run(self, code: str) -> dict[str, Any]:
        """Execute ``code`` in the namespace and return the result record sent to the host."""
        self.step += 1
        stdout = CappedText(self.output_head, self.output_tail)
        stderr = CappedText(self.output_head, self.output_tail)
        result: dict[str, Any] = {"op": "done", "value": None, "error": None, "error_type": None}
        started = time.perf_counter()
        filename = f"<step {self.step}>"
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr
        try:
            body, last = _compile(code, filename, self.reserved)
            linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
            exec(body, self.namespace)
            if last is not None:
                value = eval(last, self.namespace)
                if value is not None:
                    result["value"] = cap_text(_safe_repr(value), self.value_chars)
        except FinalAnswerSignal:
            pass
        except SyntaxError as exc:
            result["error_type"] = type(exc).__name__
            result["error"] = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
        except BaseException as exc:  # noqa: BLE001 - agent code may raise anything, SystemExit included
            result["error_type"] = type(exc).__name__
            result["error"] = _format_agent_traceback(exc)
        finally:
            sys.stdout, sys.stderr = old_out, old_err
        result["stdout"] = stdout.getvalue()
        result["stderr"] = stderr.getvalue()
        result["final_answer_called"] = self.final_answer_called
        result["final_answer"] = self.final_answer
        result["duration"] = time.perf_counter() - started
        return result


def _compile(code: str, filename: str, reserved: frozenset[str] = frozenset()) -> tuple[Any, Any]:
    """Compile to (statements, trailing expression or None); errors surface as SyntaxError.

    Binding a ``reserved`` name (``final_answer`` and the tools) is refused: a model that defines its own
    ``final_answer`` would otherwise silently never answer.
    """
    try:
        tree = ast.parse(code, filename=filename, mode="exec")
    except (ValueError, UnicodeError) as exc:  # NUL bytes, lone surrogates
        raise SyntaxError(f"the code cannot be parsed: {exc}") from None
    for node in ast.walk(tree):
        name = _bound_name(node)
        if name in reserved:
            raise SyntaxError(f"line {getattr(node, 'lineno', '?')}: {name!r} is provided by the environment; "
                              f"call it, do not redefine it")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = compile(ast.Expression(tree.body.pop().value), filename, "eval")
    return compile(tree, filename, "exec"), last


def _bound_name(node: ast.AST) -> str | None:
    """The name a definition, assignment target or import binds at this node, if any."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return node.id
    if isinstance(node, ast.alias):
        return node.asname or node.name.partition(".")[0]
    return None


def _format_agent_traceback(exc: BaseException) -> str:
    """A traceback that starts at the agent's code: frames of this runtime are dropped."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_RUNTIME_DIR)]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except BaseException as exc:  # noqa: BLE001 - a hostile __repr__
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except BaseException:  # noqa: BLE001 - a hostile __str__
        return _safe_repr(value)


def _make_tool_stub(spec: dict[str, str], call_tool: Callable[[str, list, dict], Any]) -> Callable[..., Any]:
    """A sandbox-side function that forwards its call to the host tool of the same name."""
    name = spec["name"]

    def stub(*args: Any, **kwargs: Any) -> Any:
        return call_tool(name, list(args), kwargs)

    stub.__name__ = stub.__qualname__ = name
    stub.__doc__ = f"{name}{spec.get('signature', '(...)')}\n\n{spec.get('doc', '')}".rstrip()
    return stub


_RUNTIME_DIR = __file__.rsplit("/", 1)[0]
