"""Where a tool runs: in the host (the default) or inside the sandbox.

* **Host tools** (any plain callable): agent code calls a stub; the arguments cross the worker channel as
  JSON, the tool runs in the host process, and its plain-data result comes back. Use this for anything
  holding secrets, network clients or data the agent must not read (API keys, the task world's pages).
* **Sandbox tools** (marked with :func:`sandbox_tool`): the source of the tool's module is executed inside
  each fresh sandbox worker, so the tool runs confined, next to the agent's files. Use this for tools that
  read the agent's files (a host tool would resolve paths on the host, outside the sandbox's limits). The
  module must be self-contained: standard library and installed third-party imports only, nothing from
  ``toolr1_env`` (which the sandbox cannot see).
* **Sandbox tool packages**: a package whose ``__init__`` sets ``SANDBOX_PACKAGE = True`` (for example
  :mod:`toolr1_env.readers`) is shipped whole: the source of each of its modules is served inside the
  worker by an in-memory importer under the module's own name, so its modules may import one another
  (relative imports); anything else they import must be the standard library or installed packages.
  A module is compiled only when first imported, so a large package costs nothing until it is used.
  The package's source is then visible to agent code (it is not secret; its parent packages are served
  empty, so nothing else of ``toolr1_env`` is).

A sandbox tool module (or any module of a shipped package) may define ``HOST_TOOLS: dict = {}``: the
prelude fills it with the stubs of every host tool of the sandbox, so code running inside the sandbox can
hand work to the host (``toolr1_env.readers`` sends images to a vision model this way).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Callable, Iterable
from types import ModuleType
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


#: Marks a package as shipped whole into the sandbox (set to True in its ``__init__``).
PACKAGE_MARK = "SANDBOX_PACKAGE"

# The in-memory importer the prelude installs for shipped packages (run with the real importer).
_IMPORTER = """
import importlib.abc, importlib.util, sys

class ShippedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, sources):
        self.sources = sources
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.sources:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=self.sources[fullname][1])
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        source, _, filename = self.sources[module.__name__]
        exec(compile(source, filename, 'exec', dont_inherit=True), module.__dict__)

sys.meta_path.insert(0, ShippedModules(SOURCES))
"""


def _shipped_package(module: ModuleType) -> ModuleType | None:
    """The package ``module`` belongs to when that package opts in to being shipped, else None."""
    name = module.__name__ if hasattr(module, "__path__") else (module.__package__ or "")
    package = sys.modules.get(name) if name else None
    return package if package is not None and getattr(package, PACKAGE_MARK, False) else None


def _package_sources(package: ModuleType) -> dict[str, tuple[str, bool, str]]:
    """``{module name: (source, is_package, file name)}`` for a package, its modules and empty parents."""
    sources: dict[str, tuple[str, bool, str]] = {}
    parts = package.__name__.split(".")
    for depth in range(1, len(parts)):  # parents are served as empty packages: their code stays out
        sources[".".join(parts[:depth])] = ("", True, "<parent package>")
    sources[package.__name__] = (inspect.getsource(package), True, package.__file__ or package.__name__)
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        module = importlib.import_module(info.name)
        sources[info.name] = (inspect.getsource(module), info.ispkg, module.__file__ or info.name)
    return sources


def sandbox_prelude(tools: Iterable[tuple[str, Callable[..., Any]]], host_tools: Iterable[str] = ()) -> str:
    """Python source that defines the given sandbox tools inside a worker, each under its tool name.

    Each module's source runs in a private namespace (with the unguarded importer: it is our code, not the
    agent's); only the tools themselves are bound in the agent's namespace. Tools of a shipped package
    (see the module docstring) are imported from it instead. ``host_tools`` names the sandbox's host
    tools, whose stubs fill the ``HOST_TOOLS`` dict of every tool module that defines one.
    """
    host_names = sorted(host_tools)
    by_module: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    shipped: dict[str, tuple[str, bool, str]] = {}
    imported: list[tuple[str, str, str]] = []  # (tool name, module name, attribute)
    for name, fn in tools:
        module = inspect.getmodule(fn)
        if module is None:
            raise ValueError(f"sandbox tool {name!r}: cannot find the module that defines it")
        package = _shipped_package(module)
        if package is not None:
            shipped.update(_package_sources(package))
            imported.append((name, module.__name__, fn.__name__))
            continue
        source = inspect.getsource(module)
        by_module.setdefault(module.__name__, (source, []))[1].append((name, fn.__name__))
    chunks = []
    fill = (f"__toolr1_host = {{n: globals()[n] for n in {host_names!r} if n in globals()}}\n"
            "if isinstance(__toolr1_module.get('HOST_TOOLS'), dict):\n"
            "    __toolr1_module['HOST_TOOLS'].update(__toolr1_host)")
    if shipped:
        chunks.append(f"exec(compile({_IMPORTER!r}, '<toolr1 importer>', 'exec'), "
                      f"{{'__name__': '__toolr1_importer__', 'SOURCES': {shipped!r}}})")
        for name, module_name, attr in imported:
            chunks.append("\n".join([
                f"__toolr1_module = vars(__import__({module_name!r}, fromlist=['_']))", fill,
                f"{name} = __toolr1_module[{attr!r}]", "del __toolr1_module, __toolr1_host"]))
    for module_name, (source, names) in by_module.items():
        lines = [f"__toolr1_module = {{'__name__': {module_name!r}}}",
                 f"exec(compile({source!r}, {module_name!r}, 'exec'), __toolr1_module)", fill]
        lines += [f"{name} = __toolr1_module[{attr!r}]" for name, attr in names]
        lines.append("del __toolr1_module, __toolr1_host")
        chunks.append("\n".join(lines))
    return "\n".join(chunks)
