"""The evaluation's arguments: every knob of ``agents/evaluate.py`` as one :class:`Args` dataclass.

The command's ``--help`` is generated from the fields' help lines (:func:`agents.cli.parse`);
:func:`public_args` is the form written into ``eval_config.json`` and ``summary.json`` (keys redacted).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from agents.cli import arg
from agents.evaluation.protocol import JUDGES, SUBSETS

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


def public_args(args: Args) -> dict[str, Any]:
    """The arguments as a dict for the output files, with the API keys redacted."""
    return {**dataclasses.asdict(args), "api_key": "<redacted>" if args.api_key else "",
            "web_api_key": "<redacted>" if args.web_api_key else ""}

