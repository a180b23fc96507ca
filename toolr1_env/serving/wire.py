"""What crosses the wire between a ToolR1-GAIA server and its clients: message shapes, options, limits.

The protocol is OpenEnv's WebSocket session protocol (``openenv-core``, path ``/ws``), unchanged; this module
only names what ToolR1-GAIA puts inside it, and imports nothing heavy, so the gymnasium client
(:mod:`toolr1_env.serving.remote_env`) needs neither OpenEnv nor FastAPI.

Client to server (JSON text frames)::

    {"type": "reset", "data": {"seed": 3, "task_id": "warmup-eval-0007", "config": {"tasks": "warmup-eval",
                                "max_turns": 4, "step_timeout": 10}}}
    {"type": "reset", "data": {"seed": 0, "task_id": "train-easy-100003", "task_set": "train-easy",
                               "config": {"tasks": "train", ...}}}
    {"type": "step", "data": {"code": "```py\\nprint(6 * 7)\\n```"}}
    {"type": "state"}
    {"type": "close"}

Server to client: ``{"type": "observation", "data": {"observation": {"text", "info", "terminated",
"truncated"}, "reward": float, "done": bool}}``, or ``{"type": "error", "data": {"message", "code"}}`` (OpenEnv's
codes: ``CAPACITY_REACHED``, ``VALIDATION_ERROR``, ``EXECUTION_ERROR``, ...).

``task_set`` (optional, with ``task_id``) names the set the task belongs to when it is not the session's own
``config["tasks"]``: the server looks the task up in its own copy of that set and plays it in the session's env,
as the local env plays ``reset(options={"task": task})`` (a ``Task`` object crosses the wire as its id and its
set's name; tasks are never rebuilt from client data). An unknown set is refused with the list of those offered.

``config`` holds the ``gym.make`` arguments a client may choose (:data:`CLIENT_OPTIONS`); everything that holds a
secret or reaches the network (judge, web, vision, transcription endpoints and their API keys) is fixed by the
server operator and never crosses the wire.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: ``info["infra_kind"]`` of an episode lost because its environment server failed or became unreachable.
ENV_SERVER = "env_server"

#: ``gym.make`` arguments a client may set per episode in ``reset``'s ``config`` (with the types accepted).
CLIENT_OPTIONS: dict[str, tuple[type, ...]] = {
    "tasks": (str,),  # a bundled split, or a task set the server operator named (never a client path)
    "split": (str,),
    "level": (int,),
    "max_turns": (int,),
    "step_timeout": (int, float),  # capped by the server's --max-step-timeout
    "max_observation_chars": (int,),
    "answer_weight": (int, float),
    "exec_weight": (int, float),
    "exec_bonus": (str,),  # "always" or "correct" (toolr1_env.reward.EXEC_BONUS)
    "text_answers": (bool,),
    "prompt_style": (str,),
    "tools": (list, tuple),  # names of tools the server operator registered (``toolr1-serve --tool``)
}

#: Longest code action the server accepts (the env's own action space: 4 x ``SandboxConfig.max_code_chars``).
MAX_ACTION_CHARS = 800_000
#: Largest WebSocket frame the server reads; bigger frames close that session with code 1009 (message too big).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: Start of the error a session gets after the server closed it (idle past the session timeout).
SESSION_CLOSED = "this session was closed by the server"
#: OpenEnv error code for a session refused because the server is full.
CAPACITY_REACHED = "CAPACITY_REACHED"


def check_client_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a client's ``config`` against :data:`CLIENT_OPTIONS`; return it as a plain dict.

    Raises:
        ValueError: an option a client may not set (a judge, a web backend, a path...), or a value of the
            wrong type. The message names the option, so the client can read what to fix.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be an object of gym.make options, got {type(config).__name__}")
    clean: dict[str, Any] = {}
    for key, value in config.items():
        if key not in CLIENT_OPTIONS:
            raise ValueError(f"config option {key!r} is not settable by a client (allowed: "
                             f"{', '.join(sorted(CLIENT_OPTIONS))}); the server operator sets the rest")
        types = CLIENT_OPTIONS[key]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise ValueError(f"config option {key!r} must be {' or '.join(t.__name__ for t in types)}, "
                             f"got {type(value).__name__}")
        if key == "tools" and not all(isinstance(name, str) for name in value):
            raise ValueError("config option 'tools' is a list of tool names the server registered")
        clean[key] = list(value) if key == "tools" else value
    return clean


def json_safe(value: Any) -> Any:
    """``value`` with every part JSON can carry kept and the rest turned into strings (NaN and inf into None)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return str(value)
