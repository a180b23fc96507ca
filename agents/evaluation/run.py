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

import sys
import time
from pathlib import Path
from typing import Any

from agents.cli import parse
from agents.evaluation.args import Args, public_args
from agents.evaluation.build import build_agent, judge_spec, load_task_set, make_envs, select_tasks
from agents.evaluation.episodes import AgentPlayer, EvaluationAborted, run_episodes
from agents.evaluation.identity import evaluation_identity, identity_key
from agents.evaluation.metrics import format_table
from agents.evaluation.outputs import prepare_output_dir, write_outputs
from agents.evaluation.records import EpisodeRecord, append_record, load_records
from agents.evaluation.repeats import format_repeats
from agents.players.api import AgentError

# Names other modules import from here (tests, benchmarks/bench_env.py, bench_accuracy.py, the console script).
__all__ = ["AgentPlayer", "Args", "EvaluationAborted", "SetupError", "cli", "evaluate_argv_key", "main",
           "parse_args", "prepare_output_dir", "run_episodes"]


class SetupError(RuntimeError):
    """The evaluation cannot start: bad arguments, missing tasks or adapter, an unreachable agent server."""


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

    summary = write_outputs(out, args, tasks, identity, started=started, aborted=aborted)
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
