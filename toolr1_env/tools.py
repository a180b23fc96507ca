"""Where a tool runs: in the host (the default) or inside the sandbox.

* **Host tools** (any plain callable): agent code calls a stub; the arguments cross the worker channel as
  JSON, the tool runs in the host process, and its plain-data result comes back. Use this for anything
  holding secrets, network clients or data the agent must not read (API keys, the task world's pages).
* **Sandbox tools** (marked with :func:`sandbox_tool`): the source of the tool's module is executed inside
  each fresh sandbox worker, so the tool runs confined, next to the agent's files. Use this for tools that
  read the agent's files (a host tool would resolve paths on the host, outside the sandbox's limits). The
  module must be self-contained: standard library and installed third-party imports only, nothing from
  ``toolr1_env`` (which the sandbox cannot see).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__toolr1_sandbox_tool__"


def sandbox_tool(fn: F) -> F:
    """Mark ``fn`` to run inside the sandbox (its whole module's source is loaded there)."""
    setattr(fn, _MARK, True)
    return fn


def is_sandbox_tool(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` was marked with :func:`sandbox_tool`."""
    return bool(getattr(fn, _MARK, False))


def sandbox_prelude(tools: Iterable[tuple[str, Callable[..., Any]]]) -> str:
    """Python source that defines the given sandbox tools inside a worker, each under its tool name.

    Each module's source runs in a private namespace (with the unguarded importer: it is our code, not the
    agent's); only the tools themselves are bound in the agent's namespace.
    """
    by_module: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for name, fn in tools:
        module = inspect.getmodule(fn)
        if module is None:
            raise ValueError(f"sandbox tool {name!r}: cannot find the module that defines it")
        source = inspect.getsource(module)
        by_module.setdefault(module.__name__, (source, []))[1].append((name, fn.__name__))
    chunks = []
    for module_name, (source, names) in by_module.items():
        lines = [f"__toolr1_module = {{'__name__': {module_name!r}}}",
                 f"exec(compile({source!r}, {module_name!r}, 'exec'), __toolr1_module)"]
        lines += [f"{name} = __toolr1_module[{attr!r}]" for name, attr in names]
        lines.append("del __toolr1_module")
        chunks.append("\n".join(lines))
    return "\n".join(chunks)
