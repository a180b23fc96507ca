"""The host side of the sandbox: start a fork server, run code in a persistent worker, enforce limits.

See the package docstring (``toolr1_env.sandbox``) for what is covered and what is not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from toolr1_env.sandbox import isolation
from toolr1_env.sandbox.config import (
    FINAL_ANSWER,
    HIDDEN_PACKAGES,
    ExecResult,
    SandboxConfig,
    SandboxError,
)
from toolr1_env.sandbox.host_tools import call_tool, collect_tools
from toolr1_env.sandbox.runtime import protocol
from toolr1_env.tools import is_sandbox_tool, sandbox_prelude


class Sandbox:
    """A persistent, isolated Python interpreter for one episode at a time.

    ``run`` executes code like a notebook cell; variables survive until ``reset``. Host tools are plain
    callables that run in *this* process: agent code calls a stub, the call crosses the worker channel
    as JSON, and the result (or the tool's error) comes back. Tools marked with
    :func:`toolr1_env.tools.sandbox_tool` run inside the worker instead (see ``toolr1_env.tools``).
    ``prelude`` is more Python run inside each fresh worker before the agent's first action.

    Example::

        with Sandbox(tools=[search]) as sb:
            sb.run("x = 2")
            assert sb.run("x + 1").value == "3"
    """

    def __init__(self, config: SandboxConfig | None = None,
                 tools: Iterable[Callable[..., Any]] | Mapping[str, Callable[..., Any]] = (),
                 prelude: str = "") -> None:
        self.config = config or SandboxConfig()
        named = list(tools.items()) if isinstance(tools, Mapping) else [(getattr(t, "__name__", ""), t) for t in tools]
        inside = [(name, fn) for name, fn in named if is_sandbox_tool(fn)]
        self.tools = collect_tools({name: fn for name, fn in named if not is_sandbox_tool(fn)})
        self.sandbox_tool_names = [name for name, _ in inside]
        clash = set(self.sandbox_tool_names) & set(self.tools)
        if clash or len(set(self.sandbox_tool_names)) != len(self.sandbox_tool_names):
            raise ValueError(f"duplicate tool names: {sorted(clash) or self.sandbox_tool_names}")
        self.prelude = "\n".join(p for p in (sandbox_prelude(inside, host_tools=self.tools), prelude) if p)
        self.layers: dict[str, Any] = {}
        self._root: str | None = None
        self._episode = 0
        self._workdir: Path | None = None
        self._zygote: subprocess.Popen | None = None
        self._ctrl: socket.socket | None = None
        self._channel: socket.socket | None = None
        self._stderr_file: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def workdir(self) -> Path:
        """The current episode's working directory on the host (the agent's current directory)."""
        if self._workdir is None:
            raise SandboxError("the sandbox is not started: call start() or reset() first")
        return self._workdir

    def start(self) -> None:
        """Start the fork server and the first worker (idempotent)."""
        if self._ctrl is None:
            self._start_zygote()
        if self._channel is None:
            self.reset()

    def reset(self, files: Iterable[str | os.PathLike] | Mapping[str, str | os.PathLike] = ()) -> None:
        """Kill the current worker and its children; start a clean namespace in a clean directory.

        ``files`` are host files copied into the new working directory (a mapping renames them).
        """
        if self._ctrl is None:
            self._start_zygote()
        self._close_channel()
        assert self._root is not None
        old = self._workdir
        self._episode += 1
        workdir = Path(self._root) / f"episode-{self._episode}"
        workdir.mkdir(mode=0o700)
        items = files.items() if isinstance(files, Mapping) else ((Path(f).name, f) for f in files)
        for name, src in items:
            shutil.copyfile(src, workdir / Path(name).name)
        if self._drops_uid:
            for path in [workdir, *workdir.iterdir()]:
                os.chown(path, isolation.NOBODY_UID, isolation.NOBODY_GID)
        self._workdir = workdir
        self._spawn_worker()
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        """Stop the worker and the fork server and delete the sandbox's files."""
        self._close_channel()
        if self._ctrl is not None:
            try:
                protocol.send_frame(self._ctrl, {"op": "exit"})
            except OSError:
                pass
            self._ctrl.close()
            self._ctrl = None
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
            self._zygote = None
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
            self._workdir = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- running code ------------------------------------------------------------------------------
    def run(self, code: str | bytes) -> ExecResult:
        """Execute ``code`` in the episode's namespace; never raises for anything the code does.

        Raises:
            SandboxError: the sandbox itself failed on the host side (its fork server died, a worker could
                not be started): an infrastructure outage, never the code's fault. The sandbox is then
                closed; ``reset`` starts a fresh one.
        """
        if isinstance(code, bytes):
            try:
                code = code.decode("utf-8")
            except UnicodeDecodeError as exc:
                return _input_error(f"the code is not valid UTF-8 ({exc}); send text")
        if not isinstance(code, str):
            raise TypeError(f"code must be str or bytes, got {type(code).__name__}")
        if not code.strip():
            return _input_error("the action holds no code: write Python to run")
        if len(code) > self.config.max_code_chars:
            return _input_error(f"the code is {len(code)} characters long; the limit is "
                                f"{self.config.max_code_chars}. Send shorter code.")
        if self._channel is None:
            self.start() if self._ctrl is None else self._spawn_worker()
        assert self._channel is not None
        if self._zygote is not None and self._zygote.poll() is not None:
            # Already dead: the worker dies with it (PR_SET_PDEATHSIG), but on a loaded machine that kill can
            # land after our next send, and the step would run in a worker whose sandbox is gone.
            self._raise_if_fork_server_died()
        started = time.perf_counter()
        deadline = started + self.config.step_timeout
        infra: dict[str, str] = {}  # the first infrastructure failure of a host tool during this run
        try:
            protocol.send_frame(self._channel, {"op": "exec", "code": code})
            while True:
                message = self._recv(self._channel, deadline)
                if message["op"] == "tool_call":
                    failure = self._answer_tool_call(message)
                    if failure and not infra:
                        infra = failure
                elif message["op"] == "done":
                    return _result_from(message, time.perf_counter() - started, infra)
                else:
                    raise protocol.ProtocolError(f"unexpected message {message['op']!r}")
        except TimeoutError:
            self._raise_if_fork_server_died()
            self._restart_worker()
            return ExecResult(
                error=(f"TimeoutError: the code did not finish within {self.config.step_timeout:g} seconds "
                       "and was stopped. The interpreter was restarted: variables from earlier steps are "
                       "lost. Make the computation smaller or faster."),
                error_type="TimeoutError", timed_out=True, duration=time.perf_counter() - started,
                infra_error=infra.get("error"), infra_kind=infra.get("kind"))
        except (protocol.ProtocolError, OSError) as exc:
            self._raise_if_fork_server_died()
            self._restart_worker()
            return ExecResult(
                error=("WorkerDied: the Python process running the code died (a resource limit such as "
                       f"memory or CPU time, os._exit, or a crash: {exc}). The interpreter was restarted: "
                       "variables from earlier steps are lost."),
                error_type="WorkerDied", worker_died=True, duration=time.perf_counter() - started,
                infra_error=infra.get("error"), infra_kind=infra.get("kind"))

    def _raise_if_fork_server_died(self) -> None:
        """Raise :class:`SandboxError` when the fork server we started is gone (the worker dies with it).

        The agent's code cannot reach the fork server (Landlock scopes the worker's signals; bubblewrap
        gives it its own pid namespace), so its death is a host-side outage (an OOM killer, an operator,
        a bug of ours), never the code's doing: it must not be reported as ``WorkerDied``. A dying
        process is given 50 ms to be reaped, which a real ``WorkerDied`` pays once.
        """
        if self._zygote is None:
            return
        try:
            status = self._zygote.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            return
        log = self._fork_server_log()
        self.close()
        raise SandboxError(f"the sandbox fork server died (exit status {status}) while the episode ran: its "
                           f"variables and files are lost. Fork server log:\n{log}")

    def _answer_tool_call(self, message: dict[str, Any]) -> dict[str, str] | None:
        """Run one host tool call and send the reply; return ``{"kind", "error"}`` on an infra failure."""
        name, args, kwargs = message.get("name"), message.get("args"), message.get("kwargs")
        tool = self.tools.get(name) if isinstance(name, str) else None
        if tool is None or not isinstance(args, list) or not isinstance(kwargs, dict):
            reply = {"op": "tool_result", "ok": False, "error": f"no tool named {name!r}"}
        else:
            reply = call_tool(tool, args, kwargs)
        failure = None
        if "infra_kind" in reply:
            failure = {"kind": reply.pop("infra_kind"), "error": reply.pop("infra_error")}
        try:
            frame = protocol.encode_frame(reply)
        except (TypeError, ValueError) as exc:
            frame = protocol.encode_frame({"op": "tool_result", "ok": False, "error": (
                f"{name}() returned a value that is not plain data (str, int, float, bool, None, list, "
                f"dict): {exc}")})
        assert self._channel is not None
        self._channel.sendall(frame)
        return failure

    # -- internals ---------------------------------------------------------------------------------
    @property
    def _drops_uid(self) -> bool:
        # Without bubblewrap the sandbox user must reach the interpreter's files on the real filesystem
        # (a pyenv under a 0700 /root is not reachable): then the uid switch is skipped and reported.
        return (self.config.drop_privileges and os.getuid() == 0
                and (self.layers.get("bwrap", False) or isolation.interpreter_reachable_by_others()))

    def _start_zygote(self) -> None:
        cfg = self.config
        self._root = tempfile.mkdtemp(prefix="toolr1-sandbox-")
        os.chmod(self._root, 0o711)
        use_bwrap = cfg.use_bwrap
        if use_bwrap is None:
            use_bwrap = isolation.bwrap_path() is not None
        elif use_bwrap and isolation.bwrap_path() is None:
            raise SandboxError("use_bwrap=True but bubblewrap is missing or cannot create namespaces here")
        abi = isolation.available_layers()["landlock_abi"]
        if cfg.use_landlock and not abi:
            raise SandboxError("use_landlock=True but this kernel has no Landlock")
        host_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        runtime_parent = isolation.RUNTIME_MOUNT if use_bwrap else str(Path(protocol.__file__).parents[1])
        bootstrap = (f"import sys; sys.path.insert(0, {runtime_parent!r}); from runtime.zygote import main; "
                     f"main({child_end.fileno()}, {json.dumps(list(cfg.preload))})")
        command = [isolation.interpreter(), "-I", "-B", "-c", bootstrap]
        if use_bwrap:
            command = isolation.bwrap_command(sandbox_root=self._root, network=cfg.network,
                                              hidden_packages=HIDDEN_PACKAGES, as_root=os.getuid() == 0) + command
        self._stderr_file = open(Path(self._root) / "fork-server.log", "w+b")  # noqa: SIM115
        self._zygote = subprocess.Popen(
            command, pass_fds=[child_end.fileno()], env=_scrubbed_environ(self._root), cwd=self._root,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr_file,
            start_new_session=True)
        child_end.close()
        self._ctrl = host_end
        try:
            ready = self._recv(host_end, time.perf_counter() + cfg.startup_timeout)
        except (TimeoutError, protocol.ProtocolError, OSError) as exc:
            log = self._fork_server_log()
            self.close()
            raise SandboxError(f"the sandbox fork server did not start ({exc}). Its log:\n{log}") from None
        self.layers = {"bwrap": bool(use_bwrap), "bwrap_netns": bool(use_bwrap) and not cfg.network,
                       "bwrap_pidns": bool(use_bwrap), "preloaded": ready.get("preloaded", [])}
        # A library the host has but the sandbox cannot import means the sandbox runs in another environment
        # than ours: every file or table task would fail as if the agent's code were wrong. Stop here instead.
        lost = [name for name in cfg.preload
                if name not in self.layers["preloaded"] and importlib.util.find_spec(name) is not None]
        if lost:
            self.close()
            raise SandboxError(f"the sandbox cannot import {', '.join(lost)}, which this interpreter has: it "
                               f"started outside this environment ({isolation.interpreter()})")
        self._use_landlock = bool(abi) and cfg.use_landlock is not False

    def _spawn_worker(self) -> None:
        assert self._ctrl is not None and self._workdir is not None
        cfg = self.config
        host_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        limits = {"AS": cfg.memory_limit_mb << 20, "CPU": max(int(cfg.cpu_time_limit), 1),
                  "FSIZE": cfg.max_file_size_mb << 20, "NOFILE": cfg.max_open_files, "CORE": 0}
        if self._drops_uid:
            limits["NPROC"] = cfg.max_processes
        workdir = str(self._workdir)
        config = {
            "workdir": workdir, "rlimits": limits,
            "uid": isolation.NOBODY_UID if self._drops_uid else os.getuid(),
            "gid": isolation.NOBODY_GID if self._drops_uid else os.getgid(),
            "landlock": self._use_landlock, "block_network": not cfg.network,
            "read_paths": list(cfg.extra_read_paths), "write_paths": [os.devnull],
            "hidden_packages": list(HIDDEN_PACKAGES),
            "allowed_imports": None if cfg.allowed_imports is None else list(cfg.allowed_imports),
            "output_head": cfg.max_output_chars // 2, "output_tail": cfg.max_output_chars - cfg.max_output_chars // 2,
            "value_chars": cfg.max_value_chars, "tools": [t.spec for t in self.tools.values()],
            "prelude": self.prelude, "environ": _worker_environ(workdir),
            "reserved_names": [FINAL_ANSWER, *self.tools, *self.sandbox_tool_names],
        }
        try:
            protocol.send_frame(self._ctrl, {"op": "spawn", "config": config})
            socket.send_fds(self._ctrl, [b"F"], [worker_end.fileno()])
            worker_end.close()
            deadline = time.perf_counter() + cfg.startup_timeout
            spawned = self._recv(self._ctrl, deadline)
            if spawned["op"] != "spawned":
                raise SandboxError(f"fork server refused to spawn: {spawned}")
            ready = self._recv(host_end, deadline)
        except (TimeoutError, protocol.ProtocolError, OSError) as exc:
            host_end.close()
            raise SandboxError(f"could not start a sandbox worker ({exc}). "
                               f"Fork server log:\n{self._fork_server_log()}") from None
        if ready["op"] != "ready":
            host_end.close()
            raise SandboxError(f"sandbox worker failed: {ready.get('error', ready)}")
        if ready.get("prelude_error"):
            host_end.close()
            raise SandboxError(f"the sandbox prelude raised:\n{ready['prelude_error']}")
        self.layers.update(ready.get("layers", {}))
        self._channel = host_end

    def _restart_worker(self) -> None:
        """Kill the worker and everything it started, then bring up a fresh one in the same directory."""
        self._close_channel()
        try:
            protocol.send_frame(self._ctrl, {"op": "kill"})  # type: ignore[arg-type]
            self._recv(self._ctrl, time.perf_counter() + self.config.startup_timeout)  # type: ignore[arg-type]
        except (TimeoutError, protocol.ProtocolError, OSError) as exc:
            # The fork server does not answer: it is gone or hung. The agent's code runs in a worker confined
            # away from it (Landlock scopes the worker's signals), so this is a host-side outage (an OOM
            # killer, an operator, a bug of ours), not the code's doing. The episode's state is lost with it.
            status = None if self._zygote is None else self._zygote.poll()
            log = self._fork_server_log()
            self.close()
            raise SandboxError(f"the sandbox fork server stopped answering ({type(exc).__name__}; exit status "
                               f"{status}): the episode's variables and files are lost. Its log:\n{log}") from None
        self._spawn_worker()

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    @staticmethod
    def _recv(sock: socket.socket, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        try:
            return protocol.recv_frame(sock)
        except TimeoutError:
            raise TimeoutError from None

    def _fork_server_log(self) -> str:
        if self._stderr_file is None:
            return "(no log)"
        self._stderr_file.seek(0)
        return self._stderr_file.read()[-4000:].decode("utf-8", "replace") or "(empty)"


def _result_from(message: dict[str, Any], duration: float, infra: dict[str, str]) -> ExecResult:
    def text(key: str) -> str | None:
        value = message.get(key)
        return value if isinstance(value, str) else None

    return ExecResult(stdout=text("stdout") or "", stderr=text("stderr") or "", value=text("value"),
                      error=text("error"), error_type=text("error_type"), final_answer=text("final_answer"),
                      final_answer_called=message.get("final_answer_called") is True, duration=duration,
                      infra_error=infra.get("error"), infra_kind=infra.get("kind"))


def _input_error(message: str) -> ExecResult:
    return ExecResult(error=f"InvalidAction: {message}", error_type="InvalidAction")


def _thread_vars() -> dict[str, str]:
    return {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                   "NUMEXPR_NUM_THREADS")}


def _scrubbed_environ(home: str) -> dict[str, str]:
    """The fork server's whole environment: nothing of the host's (API keys stay out)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, **_thread_vars()}


def _worker_environ(workdir: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir,
            "MPLCONFIGDIR": workdir, **_thread_vars()}
