"""``toolr1-serve``: the ToolR1-GAIA environment server (OpenEnv's ``HTTPEnvServer`` under uvicorn).

    toolr1-serve --port 8000 --max-sessions 64 --tasks warmup-eval
    toolr1-serve --port 8000 --task-set gaia=/data/GAIA/2023/validation --web ddgs --step-timeout 60 \\
        --judge-url http://judge:8001/v1 --judge-model qwen   # key from TOOLR1_JUDGE_API_KEY, never a flag

Endpoints (OpenEnv's, production mode): ``/ws`` (one session per connection; the protocol is in
:mod:`toolr1_env.serving.wire`), ``/health``, ``/schema``, ``/metadata``; plus ``/toolr1/status`` (live sessions,
the limit, the sandbox's isolation layers). Production mode leaves out OpenEnv's stateless HTTP ``/reset`` and
``/step``: each of those calls would start a sandbox outside the session limit.

Why these defaults: a session idle for ``--session-timeout`` seconds (default 600) is closed and its sandbox
stopped; a connection that dies without closing is noticed by WebSocket pings (every ``--ping-interval``
seconds); frames above 4 MiB close their own session with code 1009 and nothing else.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from toolr1_env.serving.wire import MAX_MESSAGE_BYTES, json_safe


def build_app(settings: Any, max_sessions: int = 16, session_timeout: float | None = 600.0) -> Any:
    """The FastAPI app of a ToolR1-GAIA server: OpenEnv's routes for :class:`ToolR1OpenEnv` plus a status route.

    Args:
        settings: a :class:`~toolr1_env.serving.environment.ServerSettings`.
        max_sessions: concurrent sessions (one sandbox each); one more is refused with ``CAPACITY_REACHED``.
        session_timeout: seconds a session may sit idle before the server closes it (None: never).
    """
    from fastapi import FastAPI
    from openenv.core.env_server import HTTPEnvServer
    from openenv.core.env_server.types import ConcurrencyConfig, ServerMode

    from toolr1_env.sandbox import available_layers
    from toolr1_env.serving.environment import CodeAction, EpisodeObservation, ToolR1OpenEnv

    app = FastAPI(title="ToolR1-GAIA environment server (OpenEnv)")
    server = HTTPEnvServer(functools.partial(ToolR1OpenEnv, settings), CodeAction, EpisodeObservation,
                           concurrency_config=ConcurrencyConfig(max_concurrent_envs=max_sessions,
                                                                session_timeout=session_timeout))
    server.register_routes(app, mode=ServerMode.PRODUCTION)
    layers = json_safe(available_layers())

    @app.get("/toolr1/status")
    def status() -> dict[str, Any]:
        """Live sessions, the session limit, the sandbox layers and this server's process id."""
        return {"active_sessions": server.active_sessions, "max_sessions": server.max_concurrent_envs,
                "sandbox_layers": layers, "pid": os.getpid()}

    app.state.env_server = server
    return app


def _endpoint(url: str | None, model: str | None, key_var: str) -> dict[str, str] | None:
    if not url:
        return None
    return {"base_url": url, "model": model or "default", "api_key": os.environ.get(key_var, "none")}


def _tool(spec: str) -> tuple[str, Any]:
    name, _, target = spec.partition("=")
    module, _, attr = target.partition(":")
    if not (name and module and attr):
        raise argparse.ArgumentTypeError(f"--tool wants NAME=module:function, got {spec!r}")
    return name, getattr(importlib.import_module(module), attr)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``toolr1-serve``'s flags."""
    p = argparse.ArgumentParser(prog="toolr1-serve", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 to serve other machines)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-sessions", type=int, default=16, help="concurrent sessions, one sandbox each")
    p.add_argument("--session-timeout", type=float, default=600.0, help="idle seconds before a session is closed")
    p.add_argument("--ping-interval", type=float, default=10.0, help="WebSocket ping period and timeout (s)")
    p.add_argument("--tasks", default="train", help="default task set: a bundled split")
    p.add_argument("--task-set", action="append", default=[], metavar="NAME=PATH",
                   help="a task set clients may name: a GAIA copy or task JSONL on this machine (repeatable)")
    p.add_argument("--tool", action="append", default=[], metavar="NAME=module:function",
                   help="a host tool clients may ask for by name (repeatable)")
    p.add_argument("--web", default=None, help="real-web tools for --task-set sets: 'ddgs' (default: none)")
    p.add_argument("--judge-url", default=None, help="OpenAI-compatible judge (key: TOOLR1_JUDGE_API_KEY)")
    p.add_argument("--judge-model", default=None)
    p.add_argument("--vision-url", default=None, help="vision model (key: TOOLR1_VISION_API_KEY)")
    p.add_argument("--vision-model", default=None)
    p.add_argument("--transcription-url", default=None, help="transcription model (key: TOOLR1_TRANSCRIPTION_API_KEY)")
    p.add_argument("--transcription-model", default=None)
    p.add_argument("--step-timeout", type=float, default=10.0, help="default seconds per code action")
    p.add_argument("--max-step-timeout", type=float, default=120.0, help="most a client may ask for")
    p.add_argument("--no-preload", action="store_true", help="do not preload numpy/pandas in sandboxes (less memory)")
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Any:
    """The :class:`ServerSettings` that ``toolr1-serve``'s flags describe."""
    from toolr1_env.sandbox import SandboxConfig
    from toolr1_env.serving.environment import ServerSettings

    task_sets = {}
    for spec in args.task_set:
        name, _, path = spec.partition("=")
        if not (name and path):
            raise SystemExit(f"--task-set wants NAME=PATH, got {spec!r}")
        task_sets[name] = path
    return ServerSettings(
        tasks=args.tasks, task_sets=task_sets, tools=dict(_tool(s) for s in args.tool), web=args.web,
        judge=_endpoint(args.judge_url, args.judge_model, "TOOLR1_JUDGE_API_KEY"),
        vision=_endpoint(args.vision_url, args.vision_model, "TOOLR1_VISION_API_KEY"),
        transcription=_endpoint(args.transcription_url, args.transcription_model, "TOOLR1_TRANSCRIPTION_API_KEY"),
        sandbox=SandboxConfig(preload=()) if args.no_preload else SandboxConfig(),
        step_timeout=args.step_timeout, max_step_timeout=args.max_step_timeout)


def cli(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``toolr1-serve``: build the app from the flags and serve it until interrupted."""
    # OpenEnv's package imports its gradio web UI when gradio is importable (a ModuleNotFoundError turns the UI off);
    # this server never mounts it (production mode), and the import costs ~3 s of CPU per server start.
    sys.modules.setdefault("gradio", None)  # type: ignore[arg-type]
    import uvicorn

    args = parse_args(argv)
    app = build_app(settings_from_args(args), args.max_sessions, args.session_timeout or None)
    print(f"toolr1-serve: ws://{args.host}:{args.port}/ws, up to {args.max_sessions} sessions", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, ws_max_size=MAX_MESSAGE_BYTES,
                ws_ping_interval=args.ping_interval, ws_ping_timeout=args.ping_interval)


if __name__ == "__main__":
    cli()
