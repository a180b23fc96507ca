"""ToolR1-GAIA as a service: an OpenEnv environment server and the gymnasium env that plays on it.

| module | job |
|---|---|
| :mod:`.wire` | what crosses the wire: message shapes, options a client may set, limits (no heavy imports) |
| :mod:`.environment` | ``ToolR1OpenEnv``: an OpenEnv ``Environment`` per session, each with its own sandbox |
| :mod:`.server` | ``toolr1-serve``: OpenEnv's ``HTTPEnvServer`` under uvicorn, flags, a status route |
| :mod:`.remote_env` | ``RemoteToolR1Env``: ``gym.make("ToolR1-GAIA-v0", remote=...)``, spread and failover |
| :mod:`.local_server` | ``LocalServer``: start/stop a ``toolr1-serve`` process here (tests, benchmarks, one node) |

The server needs the ``openenv`` extra (``pip install 'toolr1[openenv]'``: openenv-core, which pulls gradio); the
client needs only ``websockets``. Nothing here is imported by ``import toolr1_env``. Guide: ``docs/serving.md``.
"""
