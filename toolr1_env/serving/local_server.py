"""Start and stop ``toolr1-serve`` processes on this machine: for tests, benchmarks and a one-node set-up.

    server = LocalServer("--max-sessions", "32", "--tasks", "warmup-eval")
    env = gym.make("ToolR1-GAIA-v0", remote=server.url)
    ...
    server.stop()

Each server runs in its own process group, so :meth:`LocalServer.kill` takes its sandboxes with it, as a lost
machine would. The server imports ``openenv-core``; this module itself imports nothing heavy.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout, so `-m toolr1_env...` runs this copy


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """One ``python -m toolr1_env.serving.server`` in its own process group (killing it kills its sandboxes too)."""

    def __init__(self, *flags: str, env: dict[str, str] | None = None, nice: int = 0, preload: bool = False) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "toolr1_env.serving.server", "--port", str(self.port), *flags]
        if not preload:  # sandboxes without numpy/pandas preloaded: a fraction of the memory, for tests
            command.append("--no-preload")
        if nice:
            command = ["nice", "-n", str(nice), *command]
        self.log = open(os.devnull, "w")  # noqa: SIM115  # closed in stop()
        self.proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_healthy()

    def status(self) -> dict:
        """The server's ``/toolr1/status`` (live sessions, limit, sandbox layers, pid)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/toolr1/status", timeout=5) as reply:
            return json.loads(reply.read())

    def wait_healthy(self, timeout: float = 300.0) -> None:
        """Block until ``/health`` answers, or raise with the exit code (a busy machine starts it slowly)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"toolr1-serve exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("toolr1-serve did not become healthy")

    def children(self) -> list[int]:
        """Process ids of the server's direct children (one sandbox fork server per live session)."""
        kids: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*"):
            try:
                kids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
        return kids

    def kill(self) -> None:
        """SIGKILL the whole process group: the server and its sandboxes die as on a lost machine."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and close its log."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
