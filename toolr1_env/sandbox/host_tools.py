"""Host tools: plain callables the sandbox calls back over its channel, and how a model sees them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from toolr1_env.infra import InfraError
from toolr1_env.sandbox.config import FINAL_ANSWER


class _Annotation:
    """Shows a string annotation (from ``from __future__ import annotations``) without quotes."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def signature_text(signature: inspect.Signature) -> str:
    """``(city: str, unit: str = 'C') -> dict``: a signature as a model should read it."""
    def clean(annotation: Any) -> Any:
        return _Annotation(annotation) if isinstance(annotation, str) else annotation

    params = [p.replace(annotation=clean(p.annotation)) for p in signature.parameters.values()]
    return str(signature.replace(parameters=params, return_annotation=clean(signature.return_annotation)))


@dataclass
class HostTool:
    """A host callable with the signature and description the sandbox stub is built from."""

    name: str
    fn: Callable[..., Any]
    signature: inspect.Signature | None
    spec: dict[str, str] = field(default_factory=dict)


def collect_tools(tools: Iterable[Callable[..., Any]] | Mapping[str, Callable[..., Any]]) -> dict[str, HostTool]:
    """Validate host tools (public, unique names; callable) and describe each for the sandbox stub."""
    items = tools.items() if isinstance(tools, Mapping) else ((getattr(t, "__name__", ""), t) for t in tools)
    collected: dict[str, HostTool] = {}
    for name, fn in items:
        if not callable(fn):
            raise TypeError(f"tool {name!r} is not callable")
        if not name.isidentifier() or name.startswith("_") or name == FINAL_ANSWER:
            raise ValueError(f"invalid tool name {name!r}: use a public identifier other than {FINAL_ANSWER}")
        if name in collected:
            raise ValueError(f"two tools are named {name!r}")
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            signature = None
        spec = {"name": name, "signature": signature_text(signature) if signature else "(*args, **kwargs)",
                "doc": inspect.getdoc(fn) or ""}
        collected[name] = HostTool(name, fn, signature, spec)
    return collected


def call_tool(tool: HostTool, args: list, kwargs: dict) -> dict[str, Any]:
    """Run a host tool; binding errors and exceptions become an error the model reads.

    An :class:`~toolr1_env.infra.InfraError` also adds ``infra_kind`` and ``infra_error`` to the reply
    (the host keeps them; the worker only reads ``error``).
    """
    if tool.signature is not None:
        try:
            tool.signature.bind(*args, **kwargs)
        except TypeError as exc:
            return {"op": "tool_result", "ok": False,
                    "error": f"{tool.name}() {exc} (signature: {tool.name}{tool.signature})"}
    try:
        value = tool.fn(*args, **kwargs)
    except InfraError as exc:
        return {"op": "tool_result", "ok": False, "error": f"{tool.name}() raised InfraError: {exc}",
                "infra_kind": exc.kind, "infra_error": f"{tool.name}(): {exc}"}
    except Exception as exc:  # noqa: BLE001 - a failing tool is the model's observation, not our crash
        return {"op": "tool_result", "ok": False, "error": f"{tool.name}() raised {type(exc).__name__}: {exc}"}
    return {"op": "tool_result", "ok": True, "value": value}
