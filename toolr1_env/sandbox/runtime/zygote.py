"""The fork server ("zygote") and the worker loop it forks for each episode.

The host starts one zygote per sandbox with a fresh interpreter (never a fork of the host, so no host
memory, secrets or threads are inherited) and a scrubbed environment. The zygote imports the heavy
libraries once, then waits on its control socket. For each episode it forks a worker that confines
itself (``confine.py``) and then serves ``exec`` requests on its own channel, a socket whose other end
the host handed over with the ``spawn`` request. ``kill`` SIGKILLs the worker and every descendant:
the zygote is a child subreaper, so processes that leave the worker's process group are re-parented to
it and found.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import traceback
from typing import Any

from . import confine, protocol
from .executor import Session, ToolError


def main(ctrl_fd: int, preload: list[str]) -> None:
    """Serve spawn/kill requests on the control socket until it closes."""
    confine.die_with_parent()
    subreaper = confine.become_subreaper()
    preloaded = []
    for name in preload:
        try:
            importlib.import_module(name)
            preloaded.append(name)
        except ImportError:
            pass
    ctrl = socket.socket(fileno=ctrl_fd)
    protocol.send_frame(ctrl, {"op": "ready", "pid": os.getpid(), "preloaded": preloaded,
                               "subreaper": subreaper, "landlock_abi": confine.landlock_abi()})
    worker_pid: int | None = None
    while True:
        try:
            request = protocol.recv_frame(ctrl)
        except protocol.ProtocolError:
            _kill_descendants(worker_pid)
            return
        op = request["op"]
        if op == "spawn":
            _kill_descendants(worker_pid)
            _, fds, _, _ = socket.recv_fds(ctrl, 1, 1)
            if len(fds) != 1:
                protocol.send_frame(ctrl, {"op": "error", "error": "spawn without a channel fd"})
                continue
            worker_pid = os.fork()
            if worker_pid == 0:
                ctrl.close()
                try:
                    _worker_main(fds[0], request["config"])
                except BaseException:  # noqa: BLE001 - report our own failure to the host, then die
                    _report_fatal(fds[0], traceback.format_exc())
                os._exit(0)
            os.close(fds[0])
            protocol.send_frame(ctrl, {"op": "spawned", "pid": worker_pid})
        elif op == "kill":
            killed = _kill_descendants(worker_pid)
            worker_pid = None
            protocol.send_frame(ctrl, {"op": "killed", "count": killed})
        elif op == "exit":
            _kill_descendants(worker_pid)
            return
        else:
            protocol.send_frame(ctrl, {"op": "error", "error": f"unknown op {op!r}"})


def _children() -> list[int]:
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _kill_descendants(worker_pid: int | None) -> int:
    """SIGKILL the worker's group and every child of the zygote until none is left; reap them all."""
    killed = 0
    if worker_pid is not None:
        try:
            os.killpg(worker_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for _ in range(100):
        children = _children()
        if worker_pid is not None and worker_pid not in children:
            children.append(worker_pid)
        alive = 0
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                alive += 1
            except ProcessLookupError:
                pass
        while True:  # reap every exited child, including re-parented orphans
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG if not alive else 0)
            except ChildProcessError:
                break
            if pid == 0:
                break
            killed += 1
            alive = max(alive - 1, 0)
        worker_pid = None
        if not _children():
            break
    return killed


def _report_fatal(channel_fd: int, text: str) -> None:
    try:
        os.write(channel_fd, protocol.encode_frame({"op": "fatal", "error": text}))
    except OSError:
        pass


def _worker_main(channel_fd: int, config: dict[str, Any]) -> None:
    """Confine this freshly forked process, then run agent code until the channel closes."""
    os.setpgid(0, 0)
    confine.die_with_parent()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL if sig != signal.SIGXFSZ else signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    workdir = config["workdir"]
    os.environ.clear()
    os.environ.update(config["environ"])
    layers: dict[str, Any] = {"process": True, "env_scrubbed": True}
    channel = socket.socket(fileno=channel_fd)
    try:
        layers["rlimits"] = confine.apply_rlimits(config["rlimits"])
        layers["uid_dropped"] = confine.drop_privileges(config["uid"], config["gid"])
        os.chdir(workdir)  # after the switch: a root without CAP_DAC_OVERRIDE may not enter nobody's folder
        if config["landlock"]:
            read_paths = confine.default_read_paths(config["hidden_packages"]) + config["read_paths"]
            layers.update(confine.apply_landlock(read_paths, [workdir, *config["write_paths"]],
                                                 block_network=config["block_network"],
                                                 list_paths=confine.listable_paths()))
        else:
            confine.set_no_new_privs()
    except OSError as exc:
        protocol.send_frame(channel, {"op": "fatal", "error": f"confinement failed: {exc}"})
        return

    def call_tool(name: str, args: list, kwargs: dict) -> Any:
        try:
            message = protocol.encode_frame({"op": "tool_call", "name": name, "args": args, "kwargs": kwargs})
        except (TypeError, ValueError) as exc:
            raise TypeError(f"arguments of {name}() must be plain data (str, int, float, bool, None, "
                            f"list, dict): {exc}") from None
        channel.sendall(message)
        reply = protocol.recv_frame(channel)
        if reply.get("op") != "tool_result":
            raise protocol.ProtocolError(f"expected tool_result, got {reply.get('op')!r}")
        if not reply.get("ok"):
            raise ToolError(reply.get("error", f"{name}() failed"))
        return reply.get("value")

    session = Session(allowed_imports=config["allowed_imports"], output_head=config["output_head"],
                      output_tail=config["output_tail"], value_chars=config["value_chars"],
                      call_tool=call_tool, tools=config["tools"])
    ready: dict[str, Any] = {"op": "ready", "layers": layers, "pid": os.getpid()}
    if config.get("prelude"):
        outcome = session.run_trusted(config["prelude"])
        session.step = 0
        if outcome["error"]:
            ready["prelude_error"] = outcome["error"]
    session.reserved = frozenset(config["reserved_names"])
    protocol.send_frame(channel, ready)
    while True:
        try:
            request = protocol.recv_frame(channel)
        except protocol.ProtocolError:
            return
        if request["op"] != "exec" or not isinstance(request.get("code"), str):
            protocol.send_frame(channel, {"op": "fatal", "error": f"unexpected request {request['op']!r}"})
            continue
        protocol.send_frame(channel, session.run(request["code"]))

