"""Which isolation layers this machine offers, and the bubblewrap command line that uses them.

Detection runs once per process and is cached. Each layer is optional: the sandbox uses the strongest
combination available and reports it (see :func:`available_layers` and ``Sandbox.layers``).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from toolr1_env.sandbox.runtime import confine

#: Where the runtime folder is mounted inside bubblewrap.
RUNTIME_MOUNT = "/opt/toolr1"
#: The unprivileged account workers switch to when the host runs as root.
NOBODY_UID = NOBODY_GID = 65534


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """Path of a working ``bwrap`` (it must manage a pid and network namespace here), else None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = [path, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent",
             "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return path if ok else None


def available_layers() -> dict[str, object]:
    """The isolation layers this machine can provide, before any sandbox is started."""
    abi = confine.landlock_abi()
    return {
        "process": True,
        "rlimits": True,
        "env_scrubbed": True,
        "uid_drop": os.getuid() == 0,
        "landlock_abi": abi,
        "landlock_fs": abi >= 1,
        "landlock_net": abi >= 4,
        "landlock_signal_scope": abi >= 6,
        "bwrap": bwrap_path() is not None,
    }


def interpreter_reachable_by_others() -> bool:
    """Whether an unprivileged user could load this interpreter's files (every parent folder traversable)."""
    for prefix in {sys.base_prefix, sys.prefix}:
        for folder in [Path(prefix).resolve(), *Path(prefix).resolve().parents]:
            if not folder.stat().st_mode & 0o001:
                return False
    return True


def _system_binds() -> list[str]:
    args: list[str] = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for name in confine.SYSTEM_READ_PATHS:
        if name.startswith("/etc/") and os.path.exists(name):
            args += ["--ro-bind", name, name]
    return args


def interpreter() -> str:
    """The interpreter the sandbox starts: ``sys.executable`` with its folders' symlinks resolved, not its own.

    Inside bubblewrap the environment is mounted at its real path, so a virtualenv reached through a linked folder
    (``.venv -> /elsewhere/.venv``: a worktree sharing a checkout's environment) would start without the
    ``pyvenv.cfg`` beside it and lose the environment's packages (pandas, numpy...). The file itself stays as it
    is: a virtualenv's ``bin/python`` is a link to the base interpreter, and only the path through the
    environment's ``bin/`` tells Python which environment it runs in.
    """
    executable = Path(os.path.abspath(sys.executable))
    return str(Path(os.path.realpath(executable.parent)) / executable.name)


def _python_binds(hidden_packages: tuple[str, ...]) -> list[str]:
    """Bind the interpreter and its import path read-only, hiding this project's own packages.

    Import-path entries inside the project checkout (or above it) are never mounted: only the
    interpreter's prefixes are, even when a virtualenv lives inside the checkout.
    """
    project_root = Path(__file__).resolve().parents[2]
    prefixes = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}

    def allowed(path: Path) -> bool:
        if any(path == p or p in path.parents for p in prefixes):
            return True
        return not (path == project_root or path in project_root.parents or project_root in path.parents)

    candidates = sorted({p for p in prefixes} | {Path(e).resolve() for e in sys.path if e and os.path.isdir(e)})
    roots: list[Path] = []
    for path in candidates:  # sorted: a parent comes before its children
        if str(path).startswith(("/usr/", "/opt/toolr1")) or not allowed(path):
            continue
        if not any(r == path or r in path.parents for r in roots):
            roots.append(path)
    args: list[str] = []
    made: set[Path] = set()
    for root in roots:
        for parent in reversed(root.parents[:-1]):  # e.g. /root: traversable by the sandbox user
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(root), str(root)]
        for entry in root.glob("lib/python3*/site-packages/*"):
            if confine._is_hidden(entry.name, set(hidden_packages)) and entry.is_dir():
                args += ["--tmpfs", str(entry)]
    exe = Path(interpreter())
    if not any(r in exe.parents for r in roots):
        args += ["--ro-bind", str(exe), str(exe)]
    return args


def bwrap_command(*, sandbox_root: str, network: bool, hidden_packages: tuple[str, ...],
                  as_root: bool) -> list[str]:
    """The bubblewrap prefix that starts the fork server in its own namespaces.

    New pid, ipc, uts and (unless ``network``) network namespaces; a minimal read-only view of the
    filesystem (system libraries, the interpreter, the runtime folder) with only ``sandbox_root``
    writable; a private ``/tmp``, ``/proc`` and ``/dev``; no environment variables; a new session (no
    terminal injection). When the host is root the fork server keeps only the capabilities it needs to
    switch workers to ``nobody`` and to kill them.
    """
    path = bwrap_path()
    assert path is not None
    runtime_dir = str(Path(confine.__file__).resolve().parent)
    args = [path, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try"]
    if not network:
        args.append("--unshare-net")
    # The private /tmp comes first: the sandbox root, and sometimes the interpreter (a checkout or a
    # virtualenv under /tmp), live beneath it and must be mounted on top of it, not hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    args += _system_binds() + _python_binds(hidden_packages)
    args += ["--ro-bind", runtime_dir, f"{RUNTIME_MOUNT}/runtime", "--bind", sandbox_root, sandbox_root,
             "--clearenv", "--chdir", sandbox_root]
    if as_root:
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_KILL"]
    return args
