"""verifiers 0.4 (``verifiers.v1``): ToolR1-GAIA as a taskset, its env and a chat harness, for ``vf-eval``.

    vf-eval toolr1_env.integrations.verifiers_env --env.taskset.tasks warmup-eval --env.taskset.size 4 \\
        --model <served model> --client.base-url http://127.0.0.1:8000/v1 -n 4

verifiers 0.4 resolves a taskset id to a module that exports, through ``__all__``, one ``Taskset`` subclass and,
optionally, its ``Env`` and ``Harness`` subclasses; this module is that plugin. The env plays the user, as
verifiers' own TextArena and OpenEnv tasksets do: it opens a ToolR1-GAIA episode (in process, or on environment
servers with ``--env.taskset.remote ws://host:port``), sends the task prompt as the first user turn, runs each
assistant reply's fenced code as one env step and sends the observation back as the next user turn, until
``final_answer`` or the turn limit. The episode reward is recorded as ``toolr1_reward`` (its parts as
``answer_score`` and ``exec_success``); an infrastructure failure (judge, sandbox, environment server) is recorded
as a rollout error, never as a wrong answer.

The harness is verifiers' own ``null`` chat loop run with this interpreter instead of a ``uv`` script: ``uv``
would fetch the loop's dependencies at run time, which an offline machine cannot do, and they are verifiers' own
dependencies, installed already. ``load_environment(**taskset_options)`` builds the same env in Python.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import verifiers.v1 as vf
from verifiers.v1.harnesses.null.harness import NullHarness
from verifiers.v1.harnesses.utils.launch import CHAT_PROGRAM_SOURCE, launch_chat_program

TASK_REWARD = "toolr1_reward"


class ToolR1TasksetConfig(vf.TasksetConfig):
    """Which ToolR1-GAIA episodes a run plays, and where."""

    tasks: str = "warmup-eval"
    """A bundled split (or, with ``remote``, a task set the servers offer)."""
    size: int = 8
    """Episodes: the tasks of seeds ``0..size-1`` (the env's own seed -> task rule)."""
    task_ids: list[str] = []
    """Explicit task ids instead of seeds (then ``size`` is ignored)."""
    remote: list[str] = []
    """Environment servers (``ws://host:port``); empty: episodes run in this process."""
    max_turns: int = 4
    """Code actions per episode."""
    step_timeout: float = 10.0
    """Seconds per code action."""
    prompt_style: str = "compact"
    """``compact`` (small models) or ``full`` (every tool with its docstring)."""


class ToolR1Data(vf.TaskData):
    """One episode to play: how to open it (a task id or a seed) and the env options."""

    info: dict


class ToolR1Task(vf.Task[ToolR1Data, vf.State, vf.TaskConfig]):
    """A ToolR1-GAIA episode as a verifiers task."""


class ToolR1EnvConfig(vf.EnvConfig):
    """The env's one role: the player, run on this machine (a subprocess runtime, not a cloud sandbox)."""

    player: vf.AgentConfig = vf.AgentConfig(runtime=vf.SubprocessConfig())



class ToolR1ChatHarness(NullHarness):
    """verifiers' ``null`` chat loop, launched with this interpreter (offline) instead of a ``uv`` script."""

    async def setup(self, runtime: vf.Runtime) -> None:
        """Nothing to provision: the chat loop's dependencies are this interpreter's."""

    async def launch(self, ctx: Any, trace: Any, runtime: Any, endpoint: str, secret: str, mcp_urls: dict[str, str],
                     data: vf.TaskData, tool_interception_url: str | None = None) -> Any:
        """Run the chat loop (the player's side of the interaction) against the run's model endpoint."""
        system_prompt, prompt = self.resolve_prompt(data)

        class _Here:  # prepare_uv_script's stand-in: the same program, this interpreter
            def __init__(self, inner: Any) -> None:
                self._inner = inner

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

            async def prepare_uv_script(self, script: str | bytes, env: Any = None, *, activate: bool = True) -> list:
                path = f".toolr1-chat-{abs(hash(script)):x}.py"
                await self._inner.write(path, script.encode() if isinstance(script, str) else script)
                return [sys.executable, path]

        extra = [f"--tool-interception-url={tool_interception_url}"] if tool_interception_url else []
        return await launch_chat_program(CHAT_PROGRAM_SOURCE, self.config, ctx, trace, _Here(runtime), endpoint,
                                         secret, mcp_urls, system_prompt, prompt, extra_args=extra)


def _make_env(info: dict[str, Any]) -> Any:
    import gymnasium as gym

    import toolr1_env  # noqa: F401 - registers ToolR1-GAIA-v0

    options = {"tasks": info["tasks"], "max_turns": info["max_turns"], "step_timeout": info["step_timeout"],
               "prompt_style": info["prompt_style"]}
    if info["remote"]:
        options["remote"] = list(info["remote"])
    return gym.make("ToolR1-GAIA-v0", **options)


class ToolR1VerifiersEnv(vf.Env[ToolR1EnvConfig]):
    """The user side of a ToolR1-GAIA episode: the env's prompt and observations as user turns (module docstring)."""

    async def run(self, task: ToolR1Task, agents: Any) -> None:
        """Play one episode: reset, then one env step per assistant reply, and record the reward."""
        info = task.data.info
        env = await asyncio.to_thread(_make_env, info)
        reward, result = 0.0, {}
        try:
            options = {"task_id": info["task_id"]} if info.get("task_id") else None
            prompt, _ = await asyncio.to_thread(env.reset, seed=info.get("seed"), options=options)
            async with agents.player.interaction(task) as interaction:
                segment = await interaction.turn(prompt)
                while not segment.terminated:
                    observation, reward, terminated, truncated, result = await asyncio.to_thread(
                        env.step, segment.last_reply)
                    if terminated or truncated:
                        break
                    segment = await interaction.turn(observation)
        finally:
            await asyncio.to_thread(env.close)
        trace = interaction.trace
        components = result.get("reward_components") or {}
        trace.info.update({key: result[key] for key in ("task_id", "final_answer", "infra_kind") if key in result})
        if result.get("infra_error"):  # an outage, not a wrong answer: no reward is recorded for it
            raise vf.EnvError(f"infrastructure error ({result.get('infra_kind')}): {result['infra_error']}")
        trace.record_reward(TASK_REWARD, float(reward))
        trace.record_reward("answer_score", float(components.get("answer_score", 0.0)), 0.0)
        trace.record_reward("exec_success", float(components.get("exec_success", 0.0)), 0.0)


class ToolR1Taskset(vf.Taskset[ToolR1Task, ToolR1TasksetConfig]):
    """The episodes of a ToolR1-GAIA run: ``size`` seeds, or the given task ids."""

    def load(self) -> Iterator[ToolR1Task]:
        """One task per seed (or task id); the prompt comes from the env at reset, as the first user turn."""
        config = self.config
        common = {"tasks": config.tasks, "remote": list(config.remote), "max_turns": config.max_turns,
                  "step_timeout": config.step_timeout, "prompt_style": config.prompt_style}
        picks = ([{"task_id": t} for t in config.task_ids] if config.task_ids
                 else [{"seed": s} for s in range(config.size)])
        for pick in picks:
            name = pick.get("task_id") or f"{config.tasks}#seed{pick['seed']}"
            yield ToolR1Task(ToolR1Data(name=name, prompt=None, info={**common, **pick}), config.task)


def load_environment(**taskset_options: Any) -> ToolR1VerifiersEnv:
    """The verifiers env of this module, built in Python (``vf-eval`` builds the same from its flags)."""
    config = ToolR1EnvConfig(taskset=ToolR1TasksetConfig(id=__name__, **taskset_options))
    return ToolR1VerifiersEnv(config)


__all__ = ["ToolR1ChatHarness", "ToolR1Taskset", "ToolR1VerifiersEnv", "load_environment"]
