# ToolR1-GAIA environment server (OpenEnv): one sandbox per WebSocket session. docs/serving.md has the recipe.
#
#   docker build -t toolr1-serve .
#   docker run --rm -p 8000:8000 --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#       toolr1-serve --max-sessions 32 --tasks train
#
# The sandbox's isolation layers inside a container: Landlock needs only a kernel that has it (5.13+); bubblewrap
# needs user or mount namespaces, which Docker's default seccomp and AppArmor profiles refuse, hence the two
# --security-opt flags (or --privileged). Without them the sandbox falls back to Landlock + rlimits + the uid
# switch; GET /toolr1/status lists the layers actually in force. API keys for host tools (judge, vision,
# transcription) go in as environment variables (-e TOOLR1_JUDGE_API_KEY=...), never into the image.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/toolr1
# The environment only: no torch, no learner extras; `openenv` brings openenv-core (FastAPI, uvicorn, websockets).
COPY pyproject.toml README.md ./
COPY toolr1_env ./toolr1_env
COPY agents ./agents
COPY toolr1_gaia ./toolr1_gaia
RUN pip install --no-cache-dir ".[openenv]"

# The sandbox drops to `nobody` when the server runs as root (the container's default user).
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
ENTRYPOINT ["toolr1-serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--max-sessions", "16"]
