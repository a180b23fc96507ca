"""``ToolR1-GAIA-v0``: GAIA-style questions solved by writing Python in a persistent sandbox."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.error import ResetNeeded

from toolr1_env.infra import JUDGE, SANDBOX
from toolr1_env.judge import Judge, make_judge
from toolr1_env.parsing import FORMAT_HELP, extract_code, text_final_answer
from toolr1_env.prompts import render_compact_prompt, render_task_prompt, truncate_middle
from toolr1_env.reward import RewardWeights, episode_reward, exec_success
from toolr1_env.sandbox import ExecResult, Sandbox, SandboxConfig, SandboxError
from toolr1_env.spaces import UnicodeText
from toolr1_env.tasks import Task, TaskSet
from toolr1_env.toolbox import EndpointSpec, WebSpec, build_toolbox
from toolr1_env.tools import sandbox_tool

DEFAULT_MAX_TURNS = 8
DEFAULT_TASKS = "train"
TasksSpec = str | os.PathLike | TaskSet | Sequence[Task]


def resolve_tasks(tasks: TasksSpec, split: str | None = None, level: int | None = None) -> TaskSet:
    """Turn the ``tasks`` argument into a :class:`TaskSet`.

    A bundled split name (``"train"``, ``"validation"``, ...); a GAIA copy in either layout (a split
    folder, a metadata file, or the dataset root with ``split``; ``level`` keeps one level), see
    :func:`toolr1_env.gaia.load_gaia`; a JSONL file of our task format; a ``TaskSet``; or a list of ``Task``.
    ``split`` and ``level`` apply to GAIA copies only.
    """
    from toolr1_env import gaia, readers, suite

    gaia_part = split is not None or level is not None
    refuse = "split= and level= choose part of a GAIA copy; tasks={!r} is not one"
    if isinstance(tasks, (str, os.PathLike)):
        name = os.fspath(tasks)
        path = Path(name)
        file_tools = (sandbox_tool(readers.inspect_file),)  # reads attached files, inside the sandbox
        if name in suite.SPLITS and not gaia_part:
            return suite.load_split(name)
        if path.exists() and (path.is_dir() or path.suffix.lower() == ".parquet" or path.name.startswith("metadata.")):
            return gaia.load_gaia(path, split, level, tools=file_tools)
        if path.is_file() and not gaia_part:
            return gaia.load_task_file(path, tools=file_tools)
        if gaia_part:
            raise ValueError(refuse.format(name))
        raise ValueError(f"tasks={name!r} is neither a bundled split ({', '.join(suite.SPLITS)}) nor an "
                         "existing GAIA folder or task file")
    if gaia_part:
        raise ValueError(refuse.format(type(tasks).__name__))
    if isinstance(tasks, TaskSet):
        return tasks
    tasks = list(tasks)
    if not all(isinstance(t, Task) for t in tasks):
        raise TypeError("tasks must be a split name, a path, a TaskSet or a list of toolr1_env.Task")
    return TaskSet("custom", tasks)


class ToolR1Env(gym.Env[str, str]):
    """GAIA-style tasks solved by an agent that acts by writing Python code.

    ## Description
    Each episode poses one question (GAIA levels 1-3, or our warm-up level 0), possibly with attached
    files. The agent answers by writing Python that runs in a persistent, isolated interpreter
    (``toolr1_env.sandbox``): variables survive between steps, the allowed standard library, numpy and
    pandas are importable, and the task set's tools (for the bundled suite: ``web_search``,
    ``read_page``, ``inspect_file``; for a GAIA copy: ``inspect_file``, plus ``web_search`` and
    ``visit_page`` over the real web with ``web=``) plus any user tools are callable. The agent ends the
    episode by calling ``final_answer(answer)``. This follows Tool-R1 (Thought -> Code -> Observation).
    ``docs/gaia.md`` says how to run on real GAIA and what runs in the sandbox and what on the host.

    ## Action Space
    :class:`~toolr1_env.spaces.UnicodeText`: any string. Raw Python, or a whole LLM completion whose
    code sits in ```` ```py ```` / ```` ```python ```` fences or ``<code>`` tags (a missing closing
    fence is tolerated; several blocks run in order). An action without code is a failed step whose
    observation explains the expected format; if it holds ``FINAL ANSWER: ...`` in prose (and
    ``text_answers`` is on) that counts as the final answer.

    ## Observation Space
    :class:`~toolr1_env.spaces.UnicodeText`. After ``reset``: the task prompt (question, attached file
    names, every tool as a Python signature with its docstring, GAIA's answer-format rules, how to
    finish). After ``step``: the execution output (prints, ``Out:`` value of a trailing expression,
    stderr, error traceback or timeout notice), truncated head + tail to ``max_observation_chars``.

    ## Rewards
    0 on every step but the last. At the end: ``answer_weight * answer_score + exec_weight *
    exec_success`` (see ``toolr1_env.reward``; defaults 1.0 and 0.2; with ``exec_bonus="correct"`` the second
    term is multiplied by ``answer_score``): ``answer_score`` is the judge's
    score of the final answer (GAIA exact match by default), ``exec_success`` the share of steps whose
    code ran without error. ``info["reward_components"]`` holds every part.

    Infrastructure errors are never scored as wrong answers: when the judge could not be reached, or a
    host tool's service failed during the episode (the web, the vision model, the transcription service:
    the tool raised :class:`~toolr1_env.infra.InfraError`), ``info["infra_error"]`` (a string) says why and
    ``info["infra_kind"]`` which service (``"judge"``, ``"web"``, ``"vision"``, ``"transcription"``);
    both are set from the step of the failure on. When the sandbox itself fails on the host side (its
    fork server killed from outside, say), the episode is truncated at once with reward 0,
    ``info["infra_kind"]`` is ``"sandbox"``, and the next ``reset`` gets a fresh sandbox. Such episodes
    should be left out of training and scores (our learner and evaluation do). A task whose ground truth
    is withheld (GAIA's test split, ``Task.scored`` False) is never judged: its last step has
    ``info["scored"] = False`` and reward 0; otherwise ``info["scored"]`` is True.

    ## Starting State
    A task picked deterministically from ``reset``'s seed (``options={"task_id": ...}`` picks one by
    id), a fresh interpreter, and a working directory holding copies of the task's files.

    ## Episode End
    Termination: ``final_answer`` was called (or a prose ``FINAL ANSWER:`` was given). Truncation: the
    turn limit (``max_turns``, also honoured when set as ``gym.make(..., max_episode_steps=N)``), which
    still pays the execution part of the reward. An integration whose agent can stop acting without an
    answer (a chat model's tool loop) ends the episode with :meth:`ToolR1Env.end_episode`: truncated,
    unanswered, paid like the turn limit.

    ## Arguments
    * ``tasks``: split name (default ``"train"``, unlimited generated tasks), a GAIA copy (a split
      folder, a ``metadata.parquet``/``metadata.jsonl`` file, or the dataset root such as
      ``/data/GAIA/2023`` with ``split``), task JSONL, ``TaskSet`` or list of ``Task``.
    * ``split``: for a GAIA root, ``"validation"`` or ``"test"`` (test answers are withheld: unscored).
      ``level``: 1, 2 or 3 to load one GAIA level (``metadata.level<N>.parquet`` when present).
    * ``web``: real-web tools for GAIA copies and your own tasks (``toolr1_env.web``): ``None``
      (default: none), ``"ddgs"`` (the ddgs metasearch package), ``{"backend": "http", "base_url": ...,
      "api_key": ...}`` for any JSON search API, or a dict/``WebConfig`` with the cache, timeout, retry,
      rate-limit and size settings. Not accepted with the bundled suite, which has its own offline web.
      Host tools' time counts against ``step_timeout``: raise it (e.g. 60) with web or vision tools.
    * ``vision``: ``{"base_url", "model", "api_key"}`` (or a ``ModelEndpoint``) of an OpenAI-compatible
      vision model: ``inspect_file(image, question)`` then answers questions about images.
      ``transcription``: the same for an OpenAI-compatible transcription endpoint (audio transcripts).
    * ``tools``: extra plain Python callables (run in the host; arguments and results are plain data).
    * ``judge``: ``None`` (exact match), a ``Judge``, or ``{"base_url", "model", "api_key"}`` for an
      LLM judge through the ``openai`` client.
    * ``step_timeout``: seconds per code action (default 10). ``sandbox``: a ``SandboxConfig`` for
      every other limit (its ``step_timeout`` is overridden by ``step_timeout``).
    * ``max_turns``: steps per episode (default 8). ``max_observation_chars``: default 4000.
    * ``answer_weight``, ``exec_weight``: reward weights; ``exec_bonus``: ``"always"`` (default) or
      ``"correct"`` (the execution bonus only on a correct answer, ``toolr1_env.reward``).
    * ``text_answers``: accept ``FINAL ANSWER:`` prose.
    * ``prompt_style``: ``"full"`` (every tool with its docstring; for capable models) or ``"compact"``
      (one instruction, one worked example, one-line tool summaries; for small models).

    ## Version History
    * v0: initial release; later in v0: GAIA's parquet layout, ``split``/``level``, ``web``, ``vision``,
      ``transcription``, ``info["infra_kind"]`` and ``info["scored"]``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1, "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, tasks: TasksSpec = DEFAULT_TASKS,
                 tools: Sequence[Callable[..., Any]] | Mapping[str, Callable[..., Any]] = (),
                 judge: Judge | Mapping[str, Any] | None = None, step_timeout: float = 10.0,
                 max_turns: int | None = None, max_observation_chars: int = 4000, answer_weight: float = 1.0,
                 exec_weight: float = 0.2, exec_bonus: str = "always", sandbox: SandboxConfig | None = None,
                 text_answers: bool = True,
                 prompt_style: str = "full", render_mode: str | None = None, split: str | None = None,
                 level: int | None = None, web: WebSpec = None, vision: EndpointSpec = None,
                 transcription: EndpointSpec = None) -> None:
        if prompt_style not in ("full", "compact"):
            raise ValueError(f"prompt_style must be 'full' or 'compact', got {prompt_style!r}")
        self.prompt_style = prompt_style
        self.task_set = resolve_tasks(tasks, split, level)
        self.judge = make_judge(judge)
        self.weights = RewardWeights(answer_weight, exec_weight, exec_bonus)
        if max_turns is not None and max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        self._max_turns_arg = max_turns
        self._time_limit: int | None = None
        self.max_observation_chars = max_observation_chars
        self.text_answers = text_answers
        self.render_mode = render_mode
        toolbox = build_toolbox(self.task_set, web=web, vision=vision, transcription=transcription,
                                user_tools=tools)
        self.tools = toolbox.listed  # shown in the prompt
        self.hidden_tools = toolbox.hidden  # callable from the agent's code, not shown (see toolr1_env.toolbox)
        self._infra: tuple[str, str] | None = None  # (kind, error) of the episode's first infra failure
        self.sandbox_config = dataclasses.replace(sandbox or SandboxConfig(), step_timeout=float(step_timeout))
        self._sandbox: Sandbox | None = None
        self.action_space = UnicodeText(self.sandbox_config.max_code_chars * 4)
        self.observation_space = UnicodeText(1 << 20)
        self.task: Task | None = None
        self._done = True
        self._history: list[str] = []

    @property
    def max_turns(self) -> int:
        """The turn limit: ``max_turns`` and ``gym.make``'s ``max_episode_steps``, whichever is smaller."""
        limits = [v for v in (self._max_turns_arg, self._time_limit) if v]
        return min(limits) if limits else DEFAULT_MAX_TURNS

    def set_time_limit(self, max_episode_steps: int | None) -> None:
        """Tell the env the ``TimeLimit`` that wraps it, so its own truncation (which pays the final
        reward) happens on the same step. Called by :class:`TurnLimitSync`; rarely needed by hand."""
        self._time_limit = max_episode_steps if max_episode_steps and max_episode_steps > 0 else None

    @property
    def has_sandbox(self) -> bool:
        """Whether a sandbox is running for this env (one starts at the first ``reset`` after ``close``)."""
        return self._sandbox is not None

    @property
    def sandbox(self) -> Sandbox:
        """The episode's sandbox (started at the first ``reset``)."""
        if self._sandbox is None:
            self._sandbox = Sandbox(self.sandbox_config, tools={**self.hidden_tools, **self.tools})
        return self._sandbox

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode: pick a task, give it a clean sandbox, return the task prompt."""
        super().reset(seed=seed)
        options = options or {}
        if "task" in options:
            task = options["task"]
            if not isinstance(task, Task):
                raise TypeError(f"options['task'] must be a toolr1_env.Task, got {type(task).__name__}")
        elif "task_id" in options:
            task = self.task_set.get(str(options["task_id"]))
        else:
            task = self.task_set.pick(int(self.np_random.integers(0, 2**31 - 1)))
        for path in task.files:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"task {task.task_id!r}: attached file {path!r} does not exist")
        try:
            self.sandbox.reset(files=task.files)
        except SandboxError:  # a broken sandbox (its fork server died): one fresh start, then give up loudly
            self._drop_sandbox()
            self.sandbox.reset(files=task.files)
        self.task, self._done = task, False
        self._turn = self._errors = 0
        self._infra = None
        names = [Path(f).name for f in task.files]
        if self.prompt_style == "compact":
            prompt = render_compact_prompt(task.question, names, self.tools)
        else:
            prompt = render_task_prompt(task.question, names, self.tools, self.max_turns)
        self._history = [prompt]
        return prompt, {"task_id": task.task_id, "level": task.level}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Run the action's code; end the episode on ``final_answer`` or at the turn limit."""
        if self.task is None:
            raise ResetNeeded("call reset() before step()")
        if self._done:
            raise ResetNeeded("the episode has ended: call reset() before step()")
        if isinstance(action, bytes):
            action = action.decode("utf-8", errors="replace")
        if not isinstance(action, str):
            raise TypeError(f"an action is a str of code or an LLM completion, got {type(action).__name__}")
        self._turn += 1
        code = extract_code(action)
        answer: str | None = None
        answered = False
        if code is None:
            prose_answer = text_final_answer(action) if self.text_answers else None
            if prose_answer is not None:
                answer, answered = prose_answer, True
                observation = f"final answer received: {answer}"
            else:
                self._errors += 1
                observation = ("FormatError: no code found in the action. " + FORMAT_HELP)
            error_type = None if answered else "FormatError"
        else:
            try:
                result: ExecResult = self.sandbox.run(code)
            except SandboxError as exc:
                return self._sandbox_outage(exc)
            observation = truncate_middle(result.render(), self.max_observation_chars)
            self._errors += 0 if result.ok else 1
            answered, answer, error_type = result.final_answer_called, result.final_answer, result.error_type
            if result.infra_error and self._infra is None:
                self._infra = (result.infra_kind or "tool", result.infra_error)
        terminated = answered
        truncated = not terminated and self._turn >= self.max_turns
        info: dict[str, Any] = {"task_id": self.task.task_id, "level": self.task.level, "turn": self._turn,
                                "error_type": error_type}
        reward = 0.0
        if terminated or truncated:
            self._done = True
            reward = self._final_reward(answer if answered else None, info)
        if self._infra is not None:
            info["infra_kind"], info["infra_error"] = self._infra
        self._history += [action, observation]
        return observation, reward, terminated, truncated, info

    def _sandbox_outage(self, exc: SandboxError) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """End the episode on a host-side sandbox failure: an infrastructure error, never a wrong answer.

        The episode is truncated with reward 0 and ``info["infra_error"]`` / ``info["infra_kind"] = "sandbox"``
        (learners leave it out, evaluations count it apart); the broken sandbox is dropped, so the next
        ``reset`` gets a working one.
        """
        assert self.task is not None
        self._done = True
        self._drop_sandbox()
        message = f"SandboxError: {exc}"
        info: dict[str, Any] = {"task_id": self.task.task_id, "level": self.task.level, "turn": self._turn,
                                "error_type": "SandboxError", "infra_error": message, "infra_kind": SANDBOX,
                                "final_answer": None, "ground_truth": self.task.answer, "scored": self.task.scored,
                                "reward_components": {"answer_score": 0.0, "exec_success": 0.0, "steps": self._turn,
                                                      "errors": self._errors, "answered": False}}
        observation = "The sandbox failed on the host side (not your code); the episode was stopped."
        self._history += ["", observation]
        return observation, 0.0, False, True, info

    def _drop_sandbox(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def end_episode(self) -> tuple[float, dict[str, Any]]:
        """End the current episode now, unanswered, and return its final ``(reward, info)``.

        For agents that can stop acting without calling ``final_answer`` (TRL's JSON tool loop ends when the
        model stops calling tools): the episode is truncated here and paid exactly as the turn limit would
        pay it (answer score 0, the execution share of the steps taken so far).
        """
        if self.task is None:
            raise ResetNeeded("call reset() before end_episode()")
        if self._done:
            raise ResetNeeded("the episode has already ended")
        self._done = True
        info: dict[str, Any] = {"task_id": self.task.task_id, "level": self.task.level, "turn": self._turn,
                                "error_type": None}
        reward = self._final_reward(None, info)
        if self._infra is not None:
            info["infra_kind"], info["infra_error"] = self._infra
        return reward, info

    def _final_reward(self, answer: str | None, info: dict[str, Any]) -> float:
        assert self.task is not None
        success = exec_success(self._turn, self._errors)
        info["final_answer"] = answer
        info["ground_truth"] = self.task.answer
        info["scored"] = self.task.scored
        if not self.task.scored:  # the ground truth is withheld (GAIA's test split): never judged
            info["reward_components"] = {
                "answer_score": 0.0, "exec_success": success, "judge_raw": "unscored: the ground truth is withheld",
                "steps": self._turn, "errors": self._errors, "answered": answer is not None,
            }
            return 0.0
        verdict = self.judge.judge(self.task.question, answer, self.task.answer)
        answer_score = verdict.score if answer is not None else 0.0
        info["reward_components"] = {
            "answer_score": answer_score, "exec_success": success, "judge_raw": verdict.raw,
            "steps": self._turn, "errors": self._errors, "answered": answer is not None,
        }
        if verdict.infra_error and self._infra is None:
            self._infra = (JUDGE, verdict.infra_error)
        return episode_reward(answer_score, success, self.weights)

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the episode so far as text (prompt, actions, observations)."""
        if self.render_mode != "ansi":
            return None
        return "\n\n".join(self._history)

    def close(self) -> None:
        """Stop the sandbox's processes and delete its files; a later ``reset`` starts a fresh sandbox."""
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None


class TurnLimitSync(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Outermost wrapper added by registration: hands ``gym.make``'s ``max_episode_steps`` to the env.

    Gymnasium applies the turn limit with a ``TimeLimit`` wrapper the env cannot see, so on its own the
    env would not know that a step is the last one and could not pay the end-of-episode reward there.
    This wrapper looks up the ``TimeLimit`` below it once, at construction, and passes the limit down.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        layer: Any = env
        while isinstance(layer, gym.Wrapper):
            if isinstance(layer, gym.wrappers.TimeLimit):
                if isinstance(env.unwrapped, ToolR1Env):
                    env.unwrapped.set_time_limit(layer._max_episode_steps)
                break
            layer = layer.env
