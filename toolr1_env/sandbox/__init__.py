"""A persistent, isolated, fast Python sandbox for code actions.

How it works
------------
Each :class:`Sandbox` starts one *fork server*: a fresh interpreter (never a fork of the host) with a
scrubbed environment that imports numpy and pandas once. Each episode gets a *worker* forked from it in
about a millisecond; the worker confines itself, then runs the agent's code cell by cell in one
namespace, so variables, imports and functions persist until ``reset``. Host and worker speak
length-prefixed JSON over a socket pair (never pickle). Host tools run in the host process: agent code
calls a stub whose arguments and result cross the channel as plain data, so API keys and network clients
never enter the sandbox. ``final_answer`` raises a ``BaseException`` (``except Exception`` cannot swallow
it) and the answer is recorded before the raise, so even a bare ``except:`` cannot hide it.

What is covered
---------------
- Hangs: a wall-clock timeout per call SIGKILLs the worker and every process it started (the fork server
  is a child subreaper, so even processes that call ``setsid`` are found); a fresh worker is ready for the
  next call. Huge-integer arithmetic, ``time.sleep``, tight loops and ignored signals all stop.
- Resources: memory (RLIMIT_AS), CPU time per episode, file size, open files, core dumps off, and, when
  the host is root, the number of processes (agent code runs as ``nobody``). Output is capped (head and
  tail kept, the cut marked); stdin is ``/dev/null``.
- Filesystem (Landlock, and bubblewrap's mount namespace when available): agent code reads only system
  libraries and the interpreter's import path, minus this project's packages (task generators, answers);
  it may list (not read) the ``site-packages`` folders, so that ``importlib.metadata`` works; it writes
  only inside its episode's working directory.
- Network: none by default (bubblewrap's empty network namespace; Landlock also refuses TCP).
- Processes: a private pid namespace under bubblewrap; without it, Landlock's signal scope (ABI >= 6) and
  the switch to ``nobody`` stop agent code from signalling the host. Other processes' memory, command
  lines and environments are unreadable (no ``/proc`` access under Landlock, a private ``/proc`` under
  bubblewrap). The host's environment variables never reach the sandbox.

What is not covered
-------------------
- The import allowlist is a guide rail that gives the model a clear message, not a boundary: Python
  offers many ways around it. The operating-system layers above are the boundary.
- There is no seccomp filter: the kernel's full syscall surface is reachable (kernel exploits are out of
  scope). Without bubblewrap *and* Landlock (old kernels, some containers) only the process boundary,
  rlimits and a scrubbed environment remain; :func:`available_layers` and ``Sandbox.layers`` tell which
  layers are active, and ``SandboxConfig(use_bwrap=True, use_landlock=True)`` makes them mandatory.
- Without root, RLIMIT_NPROC is not set (it would count the user's own processes); a fork bomb is then
  bounded only by the wall-clock timeout and the kill of the whole process tree.
- Agent code can write forged frames to its own channel; the host only accepts plain JSON of the expected
  shape, so forging buys nothing an honest call could not do.
"""

from __future__ import annotations

from toolr1_env.sandbox.config import DEFAULT_ALLOWED_IMPORTS, ExecResult, SandboxConfig, SandboxError
from toolr1_env.sandbox.host import Sandbox
from toolr1_env.sandbox.isolation import available_layers

__all__ = ["DEFAULT_ALLOWED_IMPORTS", "ExecResult", "Sandbox", "SandboxConfig", "SandboxError",
           "available_layers"]
