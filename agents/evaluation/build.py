"""The pieces of an evaluation, built from its :class:`~agents.evaluation.args.Args`.

The task list (:func:`load_task_set`, :func:`select_tasks`), the batch agent (:func:`build_agent`), the envs
with their limits, services and judge (:func:`make_envs`), and the judge's description for the summary
(:func:`judge_summary`). Defaults that an adapter's training run sets (prompt style, observation cap) are
read from that run here.
"""

from __future__ import annotations

import os
from typing import Any

from agents.evaluation.args import AGENTS, Args
from agents.evaluation.protocol import apply_subset, judge_description, judge_mode, judge_prompt
from agents.players.api import AgentBatch, BatchAgent
from agents.players.scripted import ReferenceAgent, ScriptedAgent
from toolr1_env.env import ToolR1Env, resolve_tasks
from toolr1_env.suite.splits import SPLITS
from toolr1_env.tasks import Task, TaskSet
from toolr1_env.vector import ThreadVectorEnv


def load_task_set(args: Args) -> TaskSet:
    """The tasks named by ``--tasks``, ``--split`` and ``--level``; a bundled split's level is kept with its
    world's tools (``--tasks level1-eval --level 1``: the 32 web and file tasks)."""
    if args.level and args.tasks in SPLITS and not args.split:
        task_set = resolve_tasks(args.tasks)
        kept = [t for t in task_set.tasks if t.level == args.level]
        if not kept:
            raise ValueError(f"split {args.tasks!r} has no level-{args.level} tasks")
        return task_set.subset(f"{task_set.name}-level{args.level}", kept)
    return resolve_tasks(args.tasks, args.split or None, args.level or None)



def select_tasks(task_set: TaskSet, limit: int, subset: str = "all", task_ids: str = "") -> list[Task]:
    """The tasks to evaluate: the first ``limit`` (all when 0) of ``subset`` (:mod:`agents.evaluation.protocol`);
    a generated set's tasks 0..limit-1, then the subset."""
    if task_set.is_generated:
        if limit <= 0:
            raise ValueError(f"{task_set.name!r} is a generated split: pass --limit N to evaluate N of its tasks")
        return apply_subset([task_set.pick(i) for i in range(limit)], subset, task_ids)
    tasks = apply_subset(task_set.tasks, subset, task_ids)
    return tasks[:limit] if limit > 0 else tasks


def build_agent(args: Args, task_set: TaskSet, slots: int) -> BatchAgent:
    """The batch agent named by ``--agent``, with ``slots`` episode slots."""
    if args.agent == "reference":
        return AgentBatch([ReferenceAgent(task_set.tasks) for _ in range(slots)], threads=False)
    if args.agent == "scripted-empty":
        return AgentBatch([ScriptedAgent(['final_answer("")']) for _ in range(slots)], threads=False)
    if args.agent == "openai":
        import openai

        from agents.players.openai_agent import DEFAULT_SYSTEM_PROMPT, OpenAIAgent

        if not args.model:
            raise ValueError("--agent openai needs --model (the served model's name)")
        options: dict[str, Any] = {"temperature": args.temperature, "max_retries": args.max_retries,
                                   "timeout": args.request_timeout}
        for name, value in (("system_prompt", args.system_prompt), ("response_prefix", args.response_prefix),
                            ("max_tokens", args.max_tokens)):
            if value:
                options[name] = value

        def make(client: openai.OpenAI | None = None) -> OpenAIAgent:
            if args.adapter:  # a served trained policy: its run's conversation
                return OpenAIAgent.for_run(args.adapter, args.base_url, args.model, args.api_key or None,
                                           client=client, **options)
            options.setdefault("system_prompt", DEFAULT_SYSTEM_PROMPT)
            return OpenAIAgent(args.base_url, args.model, args.api_key or None, client=client, **options)

        first = make()
        first.check()  # a wrong address or model name fails here, once, with a readable message
        agents = [first, *(make(first.client) for _ in range(slots - 1))]  # one connection pool for all
        return AgentBatch(agents)
    if args.agent == "local":
        from agents.players.local_agent import LocalAgent

        # Conversation fields left at 0 / "" keep the training run's (None = not overridden).
        return LocalAgent.from_pretrained(args.model or None, args.adapter or None, num_slots=slots,
                                          dtype=args.dtype or None,
                                          temperature=args.temperature, seed=args.seed,
                                          system_prompt=args.system_prompt or None,
                                          response_prefix=args.response_prefix or None,
                                          max_new_tokens=args.max_tokens or None,
                                          max_episode_tokens=args.max_episode_tokens or None)
    raise ValueError(f"--agent must be one of {AGENTS}, got {args.agent!r}")


def prompt_style(args: Args) -> str:
    """``--prompt_style``, or its default: the training run's for an adapter, compact for local, else full."""
    if args.prompt_style:
        return args.prompt_style
    if args.adapter:
        from agents.players.trained_run import TrainedRun

        return TrainedRun.load(args.adapter).prompt_style
    return "compact" if args.agent == "local" else "full"


def max_observation_chars(args: Args) -> int:
    """``--max_observation_chars``, or its default: the training run's for an adapter, else 4000."""
    if args.max_observation_chars:
        return args.max_observation_chars
    if args.adapter:
        from agents.players.trained_run import TrainedRun

        return TrainedRun.load(args.adapter).max_observation_chars or 4000
    return 4000


def make_envs(task_set: TaskSet, args: Args, count: int) -> ThreadVectorEnv:
    """``count`` envs over ``task_set`` with the evaluation's limits and judge."""
    judge = judge_spec(args)
    style = prompt_style(args)

    services = service_options(args)
    timeout = args.step_timeout or (60.0 if any(services.values()) else 10.0)

    def factory() -> ToolR1Env:
        return ToolR1Env(tasks=task_set, judge=judge, step_timeout=timeout, max_turns=args.max_turns,
                         max_observation_chars=max_observation_chars(args), prompt_style=style, **services)

    return ThreadVectorEnv([factory] * count)


def judge_spec(args: Args) -> dict[str, Any] | None:
    """The env's ``judge`` option: None (exact match) or the LLM judge's settings (``--judge llm``)."""
    if judge_mode(args.judge, args.judge_base_url, args.judge_model) == "exact":
        return None
    return {"base_url": args.judge_base_url, "model": args.judge_model,
            "prompt_template": judge_prompt(args.judge_prompt), "request_options": judge_request_options(args)}


def judge_request_options(args: Args) -> dict[str, Any]:
    """Request fields of the LLM judge: a reasoning model gets ``reasoning_effort`` and no ``temperature``."""
    if not args.judge_reasoning_effort:
        return {}
    return {"temperature": None, "reasoning_effort": args.judge_reasoning_effort}


def judge_summary(args: Args) -> dict[str, Any]:
    """``summary.json``'s ``judge``: the mode, and for an LLM judge its model, endpoint and full prompt."""
    mode = judge_mode(args.judge, args.judge_base_url, args.judge_model)
    return judge_description(mode, args.judge_base_url, args.judge_model,
                             judge_prompt(args.judge_prompt) if mode == "llm" else "", judge_request_options(args))


def service_options(args: Args) -> dict[str, Any]:
    """The env's ``web``, ``vision`` and ``transcription`` options from the command line (None: off)."""
    web: Any = None
    if args.web == "ddgs":
        web = "ddgs"
    elif args.web == "http":
        if not args.web_base_url:
            raise ValueError("--web http needs --web_base_url (the search API's address)")
        web = {"backend": "http", "base_url": args.web_base_url,
               "api_key": args.web_api_key or os.environ.get("TOOLR1_SEARCH_API_KEY") or None}
    if web is not None and args.web_allow_private:
        web = {"backend": web} if isinstance(web, str) else web
        web["allow_private"] = True
    endpoints: dict[str, Any] = {}
    for name, base_url, model in (("vision", args.vision_base_url, args.vision_model),
                                  ("transcription", args.transcription_base_url, args.transcription_model)):
        if bool(base_url) != bool(model):
            raise ValueError(f"a {name} model needs both --{name}_base_url and --{name}_model")
        endpoints[name] = {"base_url": base_url, "model": model} if base_url else None
    return {"web": web, **endpoints}

