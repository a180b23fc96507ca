"""Evaluate any agent on ToolR1-GAIA-v0 tasks, GAIA-style, with bounded concurrency and resumable output.

    python agents/evaluate.py --agent reference --tasks validation             # the suite's own solutions
    python agents/evaluate.py --agent scripted-empty --tasks validation        # answers "" (a floor)
    python agents/evaluate.py --agent openai --tasks validation --limit 20 --concurrency 4 \\
        --base_url http://127.0.0.1:8000/v1 --model <served model name>
    python agents/evaluate.py --agent local --tasks warmup-eval --adapter runs/<run>   # a trained adapter
    python agents/evaluate.py ... --output_dir runs/eval-x --resume           # continue a killed run
    python agents/evaluate.py --agent openai --tasks ~/GAIA --split validation --web ddgs \
        --base_url https://api.openai.com/v1 --model gpt-4o                  # real GAIA, the real web
    python agents/evaluate.py ... --repeats 3 --temperature 0.7              # avg@3, pass@3, 95% intervals
    python agents/evaluate.py ... --subset text-only --judge llm \
        --judge_base_url URL --judge_model NAME                              # text-only, LLM-judged

``--tasks`` is a bundled split name, a GAIA copy (today's ``2023/<split>/metadata.parquet`` layout or the
old ``metadata.jsonl``; ``--split``/``--level`` choose part of it; see ``docs/gaia.md``) or a task JSONL;
generated splits (``train``...) need ``--limit``. ``--web ddgs`` gives the agent real-web tools
(``web_search``, ``visit_page``); ``--vision_*``/``--transcription_*`` let ``inspect_file`` answer questions
about images and transcribe audio. Tasks without a ground truth (GAIA's test split) are played for the
submission file and reported as unscored. ``--concurrency K`` keeps ``K`` episodes in flight: a
:class:`~toolr1_env.vector.ThreadVectorEnv` of ``K`` envs (each with its own sandbox) and a
:class:`~agents.players.api.BatchAgent` with ``K`` slots; each turn the agent acts for every live episode
at once (one batched generate for ``local``, ``K`` concurrent requests for ``openai``), then every
episode's code runs at once. The judge is GAIA's exact match unless ``--judge_base_url/--judge_model``
name an LLM judge (``--judge llm``). How papers report GAIA (subsets, published task lists, judges, repeated
runs with avg@k, pass@k and 95% intervals): :mod:`agents.evaluation.protocol` and :mod:`agents.evaluation.repeats`.

Output folder (``--output_dir``, default ``runs/eval__<agent>__<tasks>__<time>``):

* ``trajectories.jsonl``: one :class:`~agents.evaluation.records.EpisodeRecord` per episode, appended as it
  ends. ``--resume`` skips every task already recorded there without an infrastructure error (tasks that
  hit one are played again), so a killed evaluation loses only the episodes in flight.
* ``summary.json``, ``submission.jsonl`` (GAIA's leaderboard format) and ``report.html`` (a static page
  to browse episodes), all rebuilt from ``trajectories.jsonl`` at the end of every run.
* ``eval_config.json``: the arguments and the evaluation's identity (:mod:`agents.evaluation.identity`: a
  SHA-256 of the adapter's weights and one of the arguments); ``--resume`` refuses a folder holding another
  evaluation, so retraining into the same run folder never reuses the old adapter's records (``--limit``
  may grow: the evaluated set is always the first ``limit`` tasks).

Infrastructure errors (the judge unreachable, the agent's server failing after its retries, a sandbox, web,
vision or transcription outage) are counted apart by kind and left out of accuracy; after
``--max_agent_failures`` consecutive agent failures the run stops
(exit status 3) so that a dead server does not burn through the task list: fix it and ``--resume``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.cli import arg, parse
from agents.engine import Ending, EpisodeRequest, Halt, play_episodes
from agents.evaluation.html_report import write_html
from agents.evaluation.identity import evaluation_identity, identity_diff, identity_key
from agents.evaluation.metrics import format_table, summarize, write_submission
from agents.evaluation.protocol import (
    JUDGES,
    SUBSETS,
    apply_subset,
    judge_description,
    judge_mode,
    judge_prompt,
)
from agents.evaluation.records import (
    EpisodeRecord,
    TurnRecord,
    append_record,
    attachment_type,
    end_last_line,
    load_records,
)
from agents.evaluation.repeats import bootstrap_interval, format_repeats, per_task_scores, repeat_summary
from agents.players.api import AgentBatch, AgentError, BatchAgent
from agents.players.scripted import ReferenceAgent, ScriptedAgent
from toolr1_env.env import ToolR1Env, resolve_tasks
from toolr1_env.suite.splits import SPLITS
from toolr1_env.tasks import Task, TaskSet
from toolr1_env.vector import StepOutcome, ThreadVectorEnv

AGENTS = ("reference", "scripted-empty", "openai", "local")


@dataclass
class Args:
    """Every knob of an evaluation."""

    agent: str = arg("reference", "which agent plays", AGENTS)
    tasks: str = arg("validation", "bundled split name, a GAIA copy (its root, 2023/, a split folder or a metadata "
                                   "file; parquet or jsonl) or a task JSONL")
    split: str = arg("", "GAIA: the split of a dataset root (validation, test); test rows are reported unscored")
    level: int = arg(0, "evaluate one level only (1, 2, 3; 0 = all): of a GAIA copy, or of a bundled split")
    web: str = arg("", "real-web tools for a GAIA copy: ddgs (metasearch, no key) or http (a JSON search API at "
                       "--web_base_url); default: none (the bundled suite has its own offline web)",
                   ("", "ddgs", "http"))
    web_base_url: str = arg("", "web http backend: the search API's address")
    web_api_key: str = arg("", "web http backend: the search API's key (default $TOOLR1_SEARCH_API_KEY)")
    web_allow_private: bool = arg(False, "let the web tools fetch private and loopback addresses (an intranet "
                                         "mirror, tests); pages and searches are cached under $TOOLR1_CACHE")
    vision_base_url: str = arg("", "OpenAI-compatible endpoint that answers questions about image attachments")
    vision_model: str = arg("", "vision model name")
    transcription_base_url: str = arg("", "OpenAI-compatible endpoint that transcribes audio attachments")
    transcription_model: str = arg("", "transcription model name (e.g. whisper-1)")
    limit: int = arg(0, "evaluate only the first N tasks (0 = all; required for generated splits)")
    concurrency: int = arg(4, "episodes in flight (envs, sandboxes and agent slots)")
    base_url: str = arg("http://127.0.0.1:8000/v1", "openai: the server's base URL")
    model: str = arg("", "openai: served model name (required); local: model alias/folder (default: the adapter's "
                         "base model, else smollm2-135m)")
    api_key: str = arg("", "openai: API key (default $OPENAI_API_KEY, else a placeholder)")
    temperature: float = arg(0.0, "sampling temperature (0 = greedy)")
    max_tokens: int = arg(0, "tokens per generated turn (0 = the training run's with --adapter, else 512 for openai, "
                             "384 for local)")
    request_timeout: float = arg(120.0, "openai: seconds per request")
    max_retries: int = arg(3, "openai: retries of connection errors, timeouts, 429 and 5xx")
    adapter: str = arg("", "LoRA adapter, checkpoint or run folder written by agents/train_grpo.py: local loads "
                           "it; openai plays the served adapter in that run's conversation (system prompt, "
                           "observation framing, response prefix, token budgets, prompt style, observation cap)")
    max_episode_tokens: int = arg(0, "local: context budget of one episode (0 = the training run's, else 4096)")
    dtype: str = arg("", "local: model weight dtype (default: the training run's with --adapter, else float32)",
                     ("", "float32", "bfloat16"))
    system_prompt: str = arg("", "system message (default: the training run's with --adapter, else the agent's own)")
    prompt_style: str = arg("", "task prompt: full or compact (default: compact for local, else full)",
                            ("", "full", "compact"))
    response_prefix: str = arg("", "text forced at the start of every turn (default: the training run's with "
                                   "--adapter, else none)")
    max_turns: int = arg(8, "code actions per episode")
    step_timeout: float = arg(0.0, "seconds per code action (0 = 60 with --web or a vision/transcription model, "
                                   "whose calls count against it, else 10)")
    max_observation_chars: int = arg(0, "observation text cap, head + tail (0 = the training run's with --adapter, "
                                        "else 4000)")
    judge_base_url: str = arg("", "LLM judge base URL (default: GAIA exact match)")
    judge_model: str = arg("", "LLM judge model name")
    judge: str = arg("", "scoring: exact (GAIA's question_scorer, the default) or llm (an LLM judge at "
                         "--judge_base_url and --judge_model); mode, model and prompt go into summary.json", JUDGES)
    judge_prompt: str = arg("", "llm judge: a prompt file using {question}, {ground_truth} and {prediction} "
                                "(default: toolr1_env.judge.DEFAULT_JUDGE_PROMPT)")
    judge_reasoning_effort: str = arg("", "llm judge is a reasoning model (o3, gpt-5...): send this reasoning_effort "
                                          "and no temperature, which such models refuse")
    subset: str = arg("all", "all, or text-only: only the tasks without attachments (how many papers report GAIA)",
                      SUBSETS)
    task_ids: str = arg("", "a file of task ids, one per line: evaluate exactly those (a published subset's list)")
    repeats: int = arg(1, "play every task k times (env and sampling seeds seed..seed+k-1): avg@k, pass@k, each "
                          "run's accuracy and 95%% intervals in summary.json and the report")
    max_agent_failures: int = arg(10, "stop after N consecutive agent failures (0 = never)")
    seed: int = arg(0, "env reset seed and sampling seed")
    output_dir: str = arg("", "output folder (default runs/eval__<agent>__<tasks>__<time>)")
    resume: bool = arg(False, "continue an evaluation in output_dir, skipping finished tasks")
    no_progress: bool = arg(False, "hide the progress bar")


class EvaluationAborted(RuntimeError):
    """The agent failed too many episodes in a row (its server is probably down)."""


# ------------------------------------------------------------------------------------------ the loop


@dataclass
class _Live:
    task: Task
    record: EpisodeRecord
    observation: str
    started: float
    slot: int | None = None  # None: the agent failed at reset


class AgentPlayer:
    """A :class:`~agents.players.api.BatchAgent` as a :class:`~agents.engine.Player` of evaluation records.

    Engine slot ``i`` is agent slot ``i``. Agent errors (from ``reset_slot`` or as ``act_batch`` values)
    become ``"agent"`` infrastructure errors; env-reported outages keep the env's kind.
    """

    def __init__(self, agent: BatchAgent, tasks: Sequence[Task], tool_names: Sequence[str] = (),
                 repeats: Mapping[str, int] | None = None) -> None:
        self.agent = agent
        self.tasks = tasks
        self.tool_names = frozenset(tool_names) | {"final_answer"}
        self.repeats = dict(repeats or {})  # request group id -> which repeat it plays

    def begin(self, slot: int, index: int, request: EpisodeRequest, observation: str,
              info: Mapping[str, Any]) -> _Live:
        """Open the record and reset the agent's slot (engine hook)."""
        task = self.tasks[index]
        self.agent.reset_slot(slot, observation)
        return _Live(task, _new_record(task, self.repeats.get(request.group_id, 0)), observation, time.perf_counter(),
                     slot)

    def failed(self, request: EpisodeRequest, error: Exception) -> _Live:
        """The record of an episode whose agent failed at reset (engine hook)."""
        task = request.task
        assert task is not None
        return _Live(task, _new_record(task, self.repeats.get(request.group_id, 0)), "", time.perf_counter())

    def act(self, live: Mapping[int, _Live]) -> dict[int, str | Halt]:
        """One ``act_batch`` call for every live episode (engine hook)."""
        actions = self.agent.act_batch({slot: episode.observation for slot, episode in live.items()})
        return {slot: Halt("agent_error", f"{type(a).__name__}: {a}") if isinstance(a, AgentError) else a
                for slot, a in actions.items()}

    def observe(self, episode: _Live, action: str, outcome: StepOutcome) -> None:
        """Record the turn (engine hook)."""
        episode.record.turns.append(TurnRecord.from_step(action, outcome.observation, outcome.info.get("error_type"),
                                                         self.tool_names))
        episode.observation = outcome.observation

    def finish(self, episode: _Live, ending: Ending) -> None:
        """Fill the record's outcome, usage and wall time (engine hook)."""
        record = episode.record
        if episode.slot is not None:
            record.usage = self.agent.usage(episode.slot).to_dict()
        record.wall_seconds = time.perf_counter() - episode.started
        if ending.halt is None:
            _fill_end(record, ending)
        record.infra_kind, record.infra_error = ending.infra_kind, ending.infra_error


def run_episodes(agent: BatchAgent, envs: ThreadVectorEnv, tasks: Sequence[Task],
                 on_record: Callable[[EpisodeRecord], None], *, seed: int = 0,
                 max_agent_failures: int = 0, repeats: Sequence[int] | None = None) -> list[EpisodeRecord]:
    """Play every task once through :func:`agents.engine.play_episodes`, ``envs.num_envs`` at a time;
    call ``on_record`` as each episode ends. Returns the records in task order.

    ``repeats[i]`` (default 0) is which repeat ``tasks[i]`` plays: its env seed is ``seed + repeats[i]`` and its
    record carries it, so one task may appear once per repeat.

    Raises:
        EvaluationAborted: ``max_agent_failures`` (> 0) consecutive episodes ended in agent errors.
    """
    streak = 0

    def on_end(index: int, episode: _Live) -> None:
        nonlocal streak
        record = episode.record
        streak = streak + 1 if record.infra_kind == "agent" else 0
        on_record(record)
        if max_agent_failures and streak >= max_agent_failures:
            raise EvaluationAborted(f"{streak} episodes in a row ended in agent errors; last: {record.infra_error}")

    rounds = list(repeats) if repeats is not None else [0] * len(tasks)
    requests = [EpisodeRequest.of(task, f"{task.task_id}@{r}", seed=seed + r) for task, r in zip(tasks, rounds,
                                                                                                   strict=True)]
    env = envs.envs[0].unwrapped
    tool_names = [*getattr(env, "tools", {}), *getattr(env, "hidden_tools", {})]
    player = AgentPlayer(agent, tasks, tool_names, {q.group_id: r for q, r in zip(requests, rounds, strict=True)})
    return [e.record for e in play_episodes(player, envs, requests, on_end=on_end)]


def _new_record(task: Task, repeat: int = 0) -> EpisodeRecord:
    return EpisodeRecord(task.task_id, task.level, task.question, task.answer,
                         attachments=[attachment_type(f) for f in task.files], has_ground_truth=task.scored,
                         repeat=repeat)


def _fill_end(record: EpisodeRecord, ending: Ending) -> None:
    components = dict(ending.info.get("reward_components", {}))
    answer = ending.info.get("final_answer")
    record.final_answer = None if answer is None else str(answer)
    record.correct = float(components.get("answer_score", 0.0))
    record.reward = float(ending.reward)
    record.reward_components = components
    record.truncated = bool(ending.truncated)


# ------------------------------------------------------------------------------------------ set-up


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


def prepare_output_dir(out: Path, args: Args) -> dict[str, str]:
    """Create the folder; refuse to overwrite an evaluation, or to resume another one. Returns the identity.

    ``--resume`` continues only the same evaluation: the same adapter *weights* and the same arguments
    (:mod:`agents.evaluation.identity`), never merely the same folder names.
    """
    out.mkdir(parents=True, exist_ok=True)
    config_path, records = out / "eval_config.json", out / "trajectories.jsonl"
    current = public_args(args)
    identity = evaluation_identity(current)
    if args.resume:
        saved = json.loads(config_path.read_text()) if config_path.is_file() else {}
        if saved or records.exists():
            saved_identity = saved.get("identity")
            diffs = (identity_diff(saved_identity, identity, saved.get("args", {}), current) if saved_identity
                     else ["it records no identity (written by an older version)"])
            if diffs:
                raise ValueError(f"--resume: {out} holds another evaluation ({'; '.join(diffs)}); "
                                 "use another --output_dir")
        end_last_line(records)  # a kill mid-write leaves a partial line: never glue the next record to it
    elif records.exists():
        raise FileExistsError(f"{records} exists: pass --resume to continue it, or choose another --output_dir")
    config_path.write_text(json.dumps({"identity": identity, "args": current}, indent=2))
    return identity


def public_args(args: Args) -> dict[str, Any]:
    """The arguments as a dict for the output files, with the API keys redacted."""
    return {**dataclasses.asdict(args), "api_key": "<redacted>" if args.api_key else "",
            "web_api_key": "<redacted>" if args.web_api_key else ""}


# ------------------------------------------------------------------------------------------ main


class SetupError(RuntimeError):
    """The evaluation cannot start: bad arguments, missing tasks or adapter, an unreachable agent server."""


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


def main(args: Args) -> dict[str, Any]:
    """Run the evaluation; write the outputs; return the summary.

    Raises:
        SetupError: before any episode, with a readable message (the command prints it, no traceback).
    """
    try:
        if args.concurrency < 1:
            raise ValueError(f"--concurrency must be >= 1, got {args.concurrency}")
        if args.repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
        judge_spec(args)  # a wrong judge setting fails here, before any episode
        task_set = load_task_set(args)
        tasks = select_tasks(task_set, args.limit, args.subset, args.task_ids)
        name = Path(args.tasks).name or args.tasks
        out = Path(args.output_dir or f"runs/eval__{args.agent}__{name}__{int(time.time())}")
        identity = prepare_output_dir(out, args)
        records_path = out / "trajectories.jsonl"
        finished = ({(r.task_id, r.repeat) for r in load_records(records_path) if r.infra_error is None}
                    if args.resume else set())
        plan = [(t, r) for r in range(args.repeats) for t in tasks if (t.task_id, r) not in finished]
        todo = [t for t, _ in plan]
        slots = max(1, min(args.concurrency, len(todo)))
        agent = build_agent(args, task_set, slots) if todo else None
    except (ValueError, FileNotFoundError, FileExistsError, AgentError) as exc:
        raise SetupError(str(exc)) from exc
    print(f"[evaluate] {args.agent} on {args.tasks}: {len(tasks)} tasks x {args.repeats} run(s), "
          f"{len(tasks) * args.repeats - len(todo)} already done, {len(todo)} to play, {slots} in flight "
          f"-> {out}", file=sys.stderr)
    if args.repeats > 1 and args.temperature == 0 and args.agent in ("openai", "local"):
        print("[evaluate] warning: --repeats with --temperature 0: a deterministic agent plays the same episode "
              "each run (pass@k = avg@k); sample with --temperature > 0", file=sys.stderr)

    started = time.perf_counter()
    aborted = None
    if agent is not None:
        progress = _progress(len(todo), disabled=args.no_progress)
        tally = {"scored": 0, "correct": 0.0}

        def on_record(record: EpisodeRecord) -> None:
            append_record(records_path, record)
            if record.scored:
                tally["scored"] += 1
                tally["correct"] += record.correct
            if progress is not None:
                progress.update(1)
                progress.set_postfix(acc=f"{tally['correct'] / max(tally['scored'], 1):.3f}")

        try:
            with make_envs(task_set, args, slots) as envs:
                run_episodes(agent, envs, todo, on_record, seed=args.seed, max_agent_failures=args.max_agent_failures,
                             repeats=[r for _, r in plan])
        except EvaluationAborted as exc:
            aborted = str(exc)
        finally:
            agent.close()
            if progress is not None:
                progress.close()

    order = {t.task_id: i for i, t in enumerate(tasks)}  # outputs follow the task list, not finishing order
    records = sorted((r for r in load_records(records_path) if r.task_id in order and r.repeat < args.repeats),
                     key=lambda r: (r.repeat, order[r.task_id]))
    task_means = [sum(s) / len(s) for s in per_task_scores(records).values()]
    summary: dict[str, Any] = {"agent": args.agent, "tasks": args.tasks, "tasks_selected": len(tasks),
                               "subset": {"name": args.subset, "task_ids": args.task_ids or None, "tasks": len(tasks)},
                               "judge": judge_summary(args), **summarize(records),
                               "accuracy_ci95": bootstrap_interval(task_means),
                               "repeats": repeat_summary(records, args.repeats),
                               "run_wall_seconds": time.perf_counter() - started,
                               "aborted": aborted, "identity": identity, "args": public_args(args)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_submission(out / "submission.jsonl", [r for r in records if r.repeat == 0])  # GAIA takes one answer per task
    write_html(out / "report.html", summary, records, title=f"{args.agent} on {args.tasks}")
    print(format_table(summary))
    print(format_repeats(summary))
    print(f"[evaluate] wrote {out}/{{trajectories.jsonl,submission.jsonl,summary.json,report.html}}", file=sys.stderr)
    if aborted:
        print(f"[evaluate] stopped early: {aborted}. Fix it, then rerun with --resume --output_dir {out}",
              file=sys.stderr)
    return summary


def _progress(total: int, disabled: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="evaluate", unit="ep", disable=disabled, dynamic_ncols=True)


def parse_args(argv: list[str] | None = None) -> Args:
    """Parse the command line into :class:`Args` (``--help`` lists every field with its help line)."""
    return parse(Args, argv, description=__doc__)


def evaluate_argv_key(argv: list[str]) -> str:
    """The :func:`identity_key` of the evaluation that ``agents/evaluate.py <argv>`` would run."""
    return identity_key(evaluation_identity(public_args(parse_args(argv))))


def cli(argv: list[str] | None = None) -> int:
    """The command: 0 on success, 2 on a usage or set-up error (message, no traceback), 3 when aborted."""
    args = parse_args(argv)
    try:
        summary = main(args)
    except SetupError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    return 3 if summary["aborted"] else 0


if __name__ == "__main__":
    sys.exit(cli())
