"""Does reinforcement learning add to the supervised warm-up? Three arms from one saved warm-up per seed.

    python -m benchmarks.bench_rl                          # 3 seeds (about 35 min each on 2 CPU cores)
    python -m benchmarks.bench_rl --seeds 0 --no_write     # one seed, print only
    python -m benchmarks.bench_rl --report_only            # tabulate the runs already on disk
    python -m benchmarks.bench_rl -- --rl_lr 2e-4          # flags after -- go to every arm's training run
    python -m benchmarks.bench_rl --runs_dir runs/bench-rl2 --label "demonstrations mixed into RL" \
        --seconds_per_pass 76 -- --rl_demo_coef 1          # another recipe, its own runs and RESULTS.md section
    python -m benchmarks.bench_rl --runs_dir runs/bench-rl-files --files_eval files-eval \
        --validation train-easy-files@100000 -- --tasks train-easy-files   # pools with long-file tasks
    python -m benchmarks.bench_rl --mix 0.25 0.5 0.75 -- --select_tasks train-easy@200000
        # also the arm grpo-mix: the last RL adapter mixed back towards the warm-up, chosen on the selection split
    python -m benchmarks.bench_rl --last -- --select_tasks train-easy@200000
        # also the arm grpo-last: the last RL adapter, what the run gives without the guard

Per seed, with the main recipe's settings (``--preset multistep``, ``agents/learner/presets.py``):

1. **warm-up**: the recipe's supervised warm-up alone (``--iterations 0``); its adapter is saved as
   ``checkpoints/warmup`` and scored by a run of its own (``warmup-eval``: ``--init_adapter``, nothing trained).
2. **+GRPO**: the recipe's RL phase, branched from that adapter (``--init_adapter``, a fresh optimiser).
3. **+SFT**: more supervised passes over the same demonstrations, branched from that adapter, as many as fit
   in the wall time the GRPO arm's RL phase took (measured per seed: GRPO seconds / seconds per warm-up pass).

Every arm is scored greedily on the same held-out tasks: the level-1 tasks of two worlds no training task comes
from (``level1-eval`` and ``validation``: 32 + 53 = 85), and the arms are compared per task, paired over the
seeds, with McNemar's exact test on the tasks where they disagree. The held-out tasks are also split into
question kinds the training pools cover and kinds they do not (a kind = template plus the question with its
names, numbers and file names blanked: a heuristic, stated as such in the report).

Choices between recipes are made on a **training-world validation split**, never on the held-out tasks: every
arm's final adapter is also scored on ``--validation`` (default ``train-easy@100000``: 48 level-1 tasks of the
training split at seeds no pool uses, the held-out tasks' level), by a run of its own in ``<arm>/validation``,
reported in a table of its own. With ``--files_eval files-eval`` they are also scored on the 32 long-file tasks
of another world (tables of 150-400 rows whose answers only code can compute, ``<arm>/files``); train on the
split with long-file tasks and their computing demonstrations for that (``-- --tasks train-easy-files``, with
``--validation train-easy-files@100000``).

Runs live in ``runs/bench-rl/seed<k>/<arm>``; a finished run (``summary.json``) is reused.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agents.cli import arg, parse_with_extra
from agents.learner.task_choice import task_kind

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.memory import MemoryWatch  # noqa: E402
from benchmarks.results_file import code_commit, markdown_table, write_section  # noqa: E402

TITLE = "Does RL add to the warm-up? (bench_rl.py)"
HELD_OUT = ["--eval_tasks", "level1-eval,validation", "--eval_level", "1", "--eval_size", "0"]


@dataclass
class BenchArgs:
    """Seeds, budgets and where the runs go."""

    seeds: list[int] = arg([0, 1, 2], "seeds (each runs all three arms)")
    iterations: int = arg(0, "GRPO iterations of the +GRPO arm (0 = the recipe's)")
    runs_dir: str = arg(str(ROOT / "runs" / "bench-rl"), "where the runs live")
    report_only: bool = arg(False, "do not train; tabulate what is on disk")
    second_round: bool = arg(False, "then branch GRPO and as many more SFT passes from the +SFT arm's adapter")
    sft_passes: int = arg(0, "passes of the +SFT arm (0 = the GRPO arm's RL seconds over the warm-up's seconds per "
                             "pass, measured per seed)")
    seconds_per_pass: float = arg(0.0, "seconds of one supervised pass for the +SFT arm's count (0 = the seed's own "
                                       "warm-up run's median; give one measured on this code and an idle machine "
                                       "when that warm-up ran elsewhere)")
    validation: str = arg("train-easy@100000", "training-world validation tasks every arm's final adapter is also "
                                               "scored on (choose recipes on these, never on the held-out tasks); "
                                               "'' = none")
    validation_size: int = arg(48, "level-1 tasks of the validation split (the held-out tasks' level)")
    files_eval: str = arg("", "a split of long-file tasks (files-eval: tables too long to copy an answer from) every "
                              "arm's final adapter is also scored on, in <arm>/files, reported apart; '' = none")
    mix: list[float] = arg([], "also the arm grpo-mix: the GRPO arm's last RL adapter mixed back towards the warm-up "
                               "at each weight (0 = warm-up, 1 = last), each scored on the GRPO arm's --select_tasks; "
                               "it ends on the best of those and the GRPO arm's own (ties keep the GRPO arm's)")
    last: bool = arg(False, "also the arm grpo-last: the GRPO arm's last RL adapter (--mix_end), scored like every "
                            "arm: what the recipe gives without --select_tasks, from the same run")
    mix_end: str = arg("checkpoints/rl-end", "the GRPO arm's last RL adapter, inside its folder, for --mix and "
                                             "--last (runs from before rl-end was kept hold no last adapter: their "
                                             "last checkpoint is written after the guard took the kept one back; "
                                             "checkpoints/step-<iterations - 2> is one iteration earlier)")
    no_write: bool = arg(False, "print only; do not touch benchmarks/RESULTS.md")
    label: str = arg("", "added to the RESULTS.md section title, so that runs of another recipe (another --runs_dir) "
                         "get a section of their own")
    extra: list[str] = arg([], "internal: the arguments after -- (extra agents/train_grpo.py flags for every arm)")


def train(run_dir: Path, flags: list[str]) -> dict:
    """Run ``agents/train_grpo.py`` into ``run_dir`` unless it finished there; return its summary plus the peak
    memory (PSS) of its whole process tree (sandboxes included) in GiB."""
    summary_file = run_dir / "summary.json"
    if summary_file.is_file():
        return json.loads(summary_file.read_text())
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "agents" / "train_grpo.py"), *flags, "--output_dir", str(run_dir)]
    print("$", " ".join(command), flush=True)
    process = subprocess.Popen(command, cwd=ROOT)
    watch = MemoryWatch(process.pid).start()
    process.wait()
    watch.stop()
    peak = watch.peak_gib
    if process.returncode != 0:
        raise RuntimeError(f"training run {run_dir} failed ({process.returncode})")
    summary = json.loads(summary_file.read_text())
    summary["peak_gib"] = peak
    summary["commit"] = code_commit()
    summary_file.write_text(json.dumps(summary, indent=2))
    return summary


def run_seed(seed: int, args: BenchArgs) -> None:
    """The three arms of one seed (each skipped when already finished)."""
    root = Path(args.runs_dir) / f"seed{seed}"
    common = ["--preset", "multistep", "--seed", str(seed), *HELD_OUT, "--eval_base", "false", *args.extra]
    train(root / "warmup", [*common, "--iterations", "0", "--eval_at_start", "false"])
    start = str(root / "warmup" / "checkpoints" / "warmup")
    # Every arm is scored by a process of its own that loaded the adapter, so all three use the same code path.
    train(root / "warmup-eval", [*common, "--iterations", "0", "--init_adapter", start, "--demo_warmup_epochs", "0"])
    rl = ["--iterations", str(args.iterations)] if args.iterations else []
    train(root / "grpo", [*common, *rl, "--init_adapter", start, "--demo_warmup_epochs", "0",
                          "--eval_at_start", "false"])
    passes = sft_passes(root, args.sft_passes, args.seconds_per_pass)
    train(root / "sft", [*common, "--iterations", "0", "--init_adapter", start, "--demo_warmup_epochs", str(passes)])
    if args.mix:
        chosen = choose_mix(root, start, args.mix, args.mix_end)
        train(root / "grpo-mix", [*common, "--iterations", "0", "--init_adapter", str(chosen),
                                  "--demo_warmup_epochs", "0"])
    if args.last:
        end = last_adapter(root, args.mix_end).resolve()  # absolute: final_adapter reads it back from args.json
        train(root / "grpo-last", [*common, "--iterations", "0", "--init_adapter", str(end),
                                   "--demo_warmup_epochs", "0"])
    for folder, (tasks, size) in final_scorings(args).items():
        score_final_adapters(root, start, folder, tasks, size)
    if args.second_round:  # the same question one round later: from the longer warm-up, RL or still more SFT?
        longer = str(root / "sft" / "checkpoints" / "warmup")
        train(root / "sft-grpo", [*common, *rl, "--init_adapter", longer, "--demo_warmup_epochs", "0",
                                  "--eval_at_start", "false"])
        train(root / "sft-sft", [*common, "--iterations", "0", "--init_adapter", longer,
                                 "--demo_warmup_epochs", str(passes)])


#: Where each arm's final adapter is, relative to a seed's folder (``start``: the saved warm-up).
FINAL_ADAPTERS = {"warmup-eval": None, "grpo": "grpo", "sft": "sft/checkpoints/warmup"}


#: Display names of the arms, in table order.
ARM_NAMES = {"warmup-eval": "warm-up only", "grpo": "warm-up + GRPO",
             "grpo-mix": "warm-up + GRPO, mixed back towards the warm-up",
             "grpo-last": "warm-up + GRPO, last RL adapter (no guard)", "sft": "warm-up + SFT (same wall time)"}
#: Arms beyond the three that only ``--mix`` and ``--last`` add; each joins a table once every seed in it has it.
OPTIONAL_ARMS = ("grpo-mix", "grpo-last")
#: The paired comparisons of the held-out table (those whose two arms ran).
PAIRS = (("grpo", "warmup-eval"), ("grpo", "sft"), ("grpo-mix", "warmup-eval"), ("grpo-mix", "sft"),
         ("grpo-mix", "grpo"), ("grpo-last", "warmup-eval"), ("grpo-last", "sft"), ("grpo", "grpo-last"),
         ("sft", "warmup-eval"))


def choose_mix(root: Path, start: str, weights: list[float], end: str) -> Path:
    """The adapter the arm ``grpo-mix`` ends on: the GRPO arm's own, or its last RL adapter mixed back towards the
    warm-up (``mix/w<weight>``), whichever scores best on the split the GRPO arm selected on (``--select_tasks``;
    ties keep the GRPO arm's). Each mix is scored by a run of its own (``mix/w<weight>/select``); the choice and
    every score go to ``mix/choice.json``."""
    from agents.learner.checkpointing import mix_adapters

    grpo_args = json.loads((root / "grpo" / "args.json").read_text())
    kept = root / "grpo" / "checkpoints" / "best" / "best.json"
    if not grpo_args.get("select_tasks") or not kept.is_file():
        raise ValueError(f"--mix: {root / 'grpo'} ran without --select_tasks, so there is no split to choose on")
    scores = {"grpo": json.loads(kept.read_text())["score"]}
    for weight in weights:
        folder = root / "mix" / f"w{weight:g}"
        if not (folder / "adapter").is_dir():
            mix_adapters(start, root / "grpo" / end, weight, folder)
        scored = train(folder / "select", ["--preset", "multistep", "--seed", root.name.removeprefix("seed"),
                                           "--eval_tasks", grpo_args["select_tasks"], "--eval_level", "1",
                                           "--eval_size", str(grpo_args.get("select_size", 48)), "--eval_base",
                                           "false", "--iterations", "0", "--init_adapter", str(folder),
                                           "--demo_warmup_epochs", "0"])
        scores[folder.name] = scored["eval_success_end"]
    chosen = max(scores, key=lambda name: scores[name])  # the first of equals: the GRPO arm's own
    (root / "mix" / "choice.json").write_text(json.dumps({"scores": scores, "chosen": chosen, "end": end}, indent=2))
    return root / "grpo" if chosen == "grpo" else root / "mix" / chosen


def last_adapter(root: Path, end: str) -> Path:
    """The GRPO arm's last RL adapter: ``end`` inside its folder when the guard (``--select_tasks``) kept it there,
    else the arm's own adapter (without the guard the run ends on its last adapter)."""
    grpo_args = json.loads((root / "grpo" / "args.json").read_text())
    if not grpo_args.get("select_tasks"):
        return root / "grpo"
    if not (root / "grpo" / end).is_dir():
        raise FileNotFoundError(f"--last: {root / 'grpo' / end} is missing (a run from before rl-end was kept "
                                f"holds no last adapter: --mix_end checkpoints/step-<iterations - 2> is one earlier)")
    return root / "grpo" / end


def final_adapter(root: Path, arm: str) -> str | None:
    """Where arm ``arm``'s final adapter is: relative to a seed's folder, or absolute for ``grpo-last`` (None: the
    saved warm-up)."""
    if arm == "grpo-mix":
        chosen = json.loads((root / "mix" / "choice.json").read_text())["chosen"]
        return "grpo" if chosen == "grpo" else f"mix/{chosen}"
    if arm == "grpo-last":  # the adapter its scoring run started from (an absolute path)
        return json.loads((root / arm / "args.json").read_text())["init_adapter"]
    return FINAL_ADAPTERS[arm]


def arms_of(root: Path) -> list[str]:
    """The arms whose final adapters a seed's folder holds: the three, ``grpo-mix`` after ``--mix`` and
    ``grpo-last`` after ``--last``."""
    return [*FINAL_ADAPTERS, *(["grpo-mix"] if (root / "mix" / "choice.json").is_file() else []),
            *(["grpo-last"] if (root / "grpo-last" / "args.json").is_file() else [])]


def final_scorings(args: BenchArgs) -> dict[str, tuple[str, int]]:
    """Folder -> (tasks, level-1 tasks to take, 0 = all) of the scorings of every arm's final adapter beyond the
    held-out tasks: the training-world validation split and, when asked, the long-file split."""
    scorings = {"validation": (args.validation, args.validation_size)} if args.validation else {}
    if args.files_eval:
        scorings["files"] = (args.files_eval, 0)
    return scorings


def score_final_adapters(root: Path, start: str, folder: str, tasks: str, size: int) -> None:
    """Score every arm's final adapter on the level-1 tasks of ``tasks`` (``<arm>/<folder>``).

    The run sits inside the arm's folder, so an arm linked from another ``--runs_dir`` (the warm-up and SFT arms a
    lever's runs share) is scored once.
    """
    for arm in arms_of(root):
        adapter = final_adapter(root, arm)
        train(root / arm / folder, ["--preset", "multistep", "--seed", root.name.removeprefix("seed"),
                                    "--eval_tasks", tasks, "--eval_level", "1", "--eval_size", str(size),
                                    "--eval_base", "false", "--iterations", "0",
                                    "--init_adapter", str(root / adapter) if adapter else start,
                                    "--demo_warmup_epochs", "0"])


def sft_passes(seed_dir: Path, override: int = 0, seconds_per_pass: float = 0.0) -> int:
    """Supervised passes that take the compute time of the GRPO arm's RL phase (at least 1): its rollout and update
    seconds over the median seconds of one warm-up pass (``seconds_per_pass``, or the seed's warm-up run's;
    ``override`` > 0 wins)."""
    if override > 0:
        return override
    warm = _rows(seed_dir / "warmup")[0]
    per_pass = seconds_per_pass or warm.get("warmup/seconds_per_pass") or \
        warm["time/warmup_s"] / json.loads((seed_dir / "warmup" / "args.json").read_text())["demo_warmup_epochs"]
    rl_seconds = sum(r.get("rollout/wall_s", 0.0) + r.get("time/update_s", 0.0) for r in _rows(seed_dir / "grpo"))
    return max(1, round(rl_seconds / per_pass))


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def outcomes(run_dir: Path) -> dict[str, bool]:
    """Task id -> correct, from the run's last held-out evaluation."""
    files = sorted((run_dir / "episodes").glob("eval-*.jsonl"), key=lambda p: int(p.stem.split("-")[1])
                   if p.stem.split("-")[1].isdigit() else -1)
    records = [json.loads(line) for line in files[-1].read_text().splitlines()]
    return {r["task_id"]: bool(r["correct"]) for r in records}


def mcnemar(wins: int, losses: int) -> float:
    """Two-sided exact McNemar p-value for ``wins`` vs ``losses`` discordant pairs."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def kinds(split: str = "train-easy") -> tuple[dict[str, str], set[str], set[str]]:
    """Held-out task id -> kind; the kinds of the warm-up pool (seeds 0-47 of the training ``split``) and of the RL
    pool (48-239)."""
    from toolr1_env.env import resolve_tasks

    held: dict[str, str] = {}
    for name in ("level1-eval", "validation"):
        for t in resolve_tasks(name).tasks:
            if t.level == 1:
                held[t.task_id] = task_kind(t)
    train = resolve_tasks(split)
    pool = {s: task_kind(train.pick(s)) for s in range(240)}
    return held, {k for s, k in pool.items() if s < 48}, {k for s, k in pool.items() if s >= 48}


def report(args: BenchArgs) -> str:
    """The comparison table, paired tests and per-kind split of every finished seed."""
    per_seed: dict[int, dict[str, dict[str, bool]]] = {}
    summaries: dict[int, dict[str, dict]] = {}
    for seed in args.seeds:
        root = Path(args.runs_dir) / f"seed{seed}"
        if all((root / a / "summary.json").is_file() for a in FINAL_ADAPTERS):
            per_seed[seed] = {a: outcomes(root / a) for a in FINAL_ADAPTERS}
            summaries[seed] = {a: json.loads((root / a / "summary.json").read_text())
                               for a in ("warmup", "grpo", "sft")}
    if not per_seed:
        return "No finished seed yet."
    # --mix, --last: such an arm joins the tables once every finished seed has it
    joined = [a for a in OPTIONAL_ARMS
              if all((Path(args.runs_dir) / f"seed{s}" / a / "summary.json").is_file() for s in per_seed)]
    arms = [a for a in ARM_NAMES if a not in OPTIONAL_ARMS or a in joined]
    for seed in per_seed:
        per_seed[seed].update({a: outcomes(Path(args.runs_dir) / f"seed{seed}" / a) for a in joined})
    mixed = "grpo-mix" in joined
    trained_on = json.loads((Path(args.runs_dir) / f"seed{min(per_seed)}" / "warmup" / "args.json").read_text())
    held, warm_kinds, rl_kinds = kinds(trained_on.get("tasks", "train-easy"))
    groups = {"warm-up pool's kinds": lambda k: k in warm_kinds,
              "RL pool's kinds only": lambda k: k in rl_kinds and k not in warm_kinds,
              "new kinds": lambda k: k not in warm_kinds and k not in rl_kinds}
    rows = []
    for arm in arms:
        rates = [100 * statistics.mean(per_seed[s][arm].values()) for s in per_seed]
        split = []
        for member in groups.values():
            hits = [v for s in per_seed for t, v in per_seed[s][arm].items() if member(held.get(t, ""))]
            split.append(f"{100 * statistics.mean(hits):.1f} ({len(hits) // len(per_seed)})" if hits else "-")
        rows.append([ARM_NAMES[arm], " / ".join(f"{r:.1f}" for r in rates), f"{statistics.mean(rates):.1f}", *split])
    table = markdown_table(["arm", "held-out level-1 success % per seed", "mean",
                            *(f"{name} (tasks)" for name in groups)], rows)
    tests = []
    for a, b in PAIRS:
        if a not in arms or b not in arms:
            continue
        wins = sum(per_seed[s][a][t] and not per_seed[s][b][t] for s in per_seed for t in per_seed[s][a])
        losses = sum(per_seed[s][b][t] and not per_seed[s][a][t] for s in per_seed for t in per_seed[s][a])
        delta = statistics.mean(100 * (statistics.mean(per_seed[s][a].values()) - statistics.mean(
            per_seed[s][b].values())) for s in per_seed)
        tests.append([f"{ARM_NAMES[a]} vs {ARM_NAMES[b]}", f"{delta:+.1f}", wins, losses,
                      f"{mcnemar(wins, losses):.3f}"])
    paired = markdown_table(["comparison", "mean change (points)", "tasks won", "tasks lost", "McNemar p"], tests)
    walls = [[f"seed {s}", *(f"{summaries[s][a]['wall_seconds'] / 60:.1f}" for a in ("warmup", "grpo", "sft")),
              str(json.loads((Path(args.runs_dir) / f"seed{s}" / "sft" / "args.json").read_text())[
                  "demo_warmup_epochs"]),
              f"{max(summaries[s][a].get('peak_gib', 0) for a in ('warmup', 'grpo', 'sft')):.1f}"] for s in per_seed]
    wall = markdown_table(["seed", "warm-up (min)", "GRPO arm (min)", "SFT arm (min)", "SFT passes", "peak GiB"],
                          walls)
    second = [s for s in per_seed if all((Path(args.runs_dir) / f"seed{s}" / a / "summary.json").is_file()
                                         for a in ("sft-grpo", "sft-sft"))]
    if second:
        outcomes2 = {s: {a: outcomes(Path(args.runs_dir) / f"seed{s}" / a) for a in ("sft-grpo", "sft-sft")}
                     for s in second}
        rows2 = []
        for a, b in (("sft-grpo", "sft"), ("sft-sft", "sft"), ("sft-grpo", "sft-sft")):
            pick = {s: {"sft": per_seed[s]["sft"], **outcomes2[s]} for s in second}
            wins = sum(pick[s][a][t] and not pick[s][b][t] for s in second for t in pick[s][a])
            losses = sum(pick[s][b][t] and not pick[s][a][t] for s in second for t in pick[s][a])
            rate = statistics.mean(100 * statistics.mean(pick[s][a].values()) for s in second)
            base = statistics.mean(100 * statistics.mean(pick[s][b].values()) for s in second)
            rows2.append([f"{a} vs {b}", f"{rate:.1f} vs {base:.1f}", wins, losses, f"{mcnemar(wins, losses):.3f}"])
        paired += "\n\nSecond round, from the +SFT arm's adapter (seeds " + str(second) + "):\n\n" + markdown_table(
            ["comparison", "success %", "tasks won", "tasks lost", "McNemar p"], rows2)
    for folder, (tasks, _) in final_scorings(args).items():
        extra = final_report(args, sorted(per_seed), folder, tasks)
        if extra:
            paired += "\n\n" + extra
    arm_args = [Path(args.runs_dir) / f"seed{s}" / "grpo" / "args.json" for s in per_seed]
    mixing = sorted({(grpo.get("rl_demo_coef", 0.0), grpo.get("rl_demo_batch", 0)) for grpo in (
        json.loads(f.read_text()) if f.is_file() else {} for f in arm_args)})
    recipe = "; ".join(f"demonstrations mixed into each RL update: {b} at weight {c}" if c else
                       "no demonstrations in the RL updates" for c, b in mixing)
    kept = {s: json.loads(f.read_text()) for s in per_seed
            if (f := Path(args.runs_dir) / f"seed{s}" / "grpo" / "checkpoints" / "best" / "best.json").is_file()}
    if kept:  # --select_tasks: the arm ended on its best adapter on that split
        recipe += "; the adapter it ended on (--select_tasks), per seed: " + ", ".join(
            f"seed {s} after iteration {k['iteration']} (selection success {100 * k['score']:.1f}%)"
            for s, k in kept.items())
    if mixed:
        choices = {s: json.loads((Path(args.runs_dir) / f"seed{s}" / "mix" / "choice.json").read_text())
                   for s in per_seed}
        recipe += ("\n- GRPO arm mixed back: its last RL adapter mixed with the warm-up (parameter by parameter), "
                   "chosen with the GRPO arm's own adapter on its selection split; selection success per seed: " +
                   "; ".join(f"seed {s}: " + ", ".join(f"{name} {100 * v:.1f}" for name, v in c["scores"].items())
                             + f" (chose {c['chosen']})" for s, c in choices.items()))
    if "grpo-last" in joined:
        seed_dirs = {s: Path(args.runs_dir) / f"seed{s}" for s in per_seed}
        ends = {s: os.path.relpath(final_adapter(d, "grpo-last") or "", d.resolve()) for s, d in seed_dirs.items()}
        recipe += ("\n- GRPO arm's last RL adapter (what the run gives without the guard), inside each seed's folder: "
                   + ", ".join(f"seed {s}: {end}" for s, end in ends.items()))
    trained = sorted({summaries[s][a].get("commit", "?") for s in per_seed for a in summaries[s]})
    commit = f"runs trained at {', '.join(trained)} (? = before commits were recorded), reported at {code_commit()}"
    return (f"{table}\n\n{paired}\n\n{wall}\n\n- seeds finished: {sorted(per_seed)} (a claim needs all 3); "
            f"held-out = {len(held)} level-1 tasks of level1-eval and validation, split by whether a training pool "
            "asks the same kind of question (kind: template plus wording with names, numbers and files blanked, a "
            f"heuristic; see the script)\n- GRPO arm: the recipe's RL phase, {recipe}\n- code: {commit}; every arm "
            "scored greedily in bf16 autocast like the recipe, each by a process of its own; the SFT arm's passes "
            "fill the GRPO arm's rollout and update seconds; peak GiB = PSS of the whole process tree, sandboxes "
            "included\n")


def final_report(args: BenchArgs, seeds: list[int], folder: str = "validation", tasks: str = "") -> str:
    """The arms' final adapters on one more split (``<arm>/<folder>``, seeds whose arms were all scored), paired."""
    def done(seed: int, arm: str) -> bool:
        return (Path(args.runs_dir) / f"seed{seed}" / arm / folder / "summary.json").is_file()

    seeds = [s for s in seeds if all(done(s, a) for a in FINAL_ADAPTERS)]
    if not seeds:
        return ""
    arms = [a for a in ARM_NAMES if all(done(s, a) for s in seeds)]  # grpo-mix too once every seed has it
    scored = {s: {a: outcomes(Path(args.runs_dir) / f"seed{s}" / a / folder) for a in arms} for s in seeds}
    left_out: list[str] = []
    if folder == "validation":  # tasks of the training world: a pool may ask the very same question
        seed_dir = Path(args.runs_dir) / f"seed{min(scored)}"
        args_file = next((f for f in (seed_dir / "grpo" / "args.json", seed_dir / "warmup" / "args.json")
                          if f.is_file()), None)  # the GRPO arm's names its RL pool
        run_args = json.loads(args_file.read_text()) if args_file else {}
        ids = {t for arms in scored.values() for t in arms["grpo"]}
        left_out = sorted(ids & asked_by_pools(tasks or args.validation, args.validation_size, run_args))
        scored = {s: {a: {t: v for t, v in by_arm[a].items() if t not in left_out} for a in by_arm}
                  for s, by_arm in scored.items()}
    rows = []
    for arm in arms:
        rates = [100 * statistics.mean(scored[s][arm].values()) for s in scored]
        rows.append([ARM_NAMES[arm], " / ".join(f"{r:.1f}" for r in rates), f"{statistics.mean(rates):.1f}"])
    for a, b in PAIRS:
        if a not in arms or b not in arms or (a, b) == ("sft", "warmup-eval"):
            continue
        wins = sum(scored[s][a][t] and not scored[s][b][t] for s in scored for t in scored[s][a])
        losses = sum(scored[s][b][t] and not scored[s][a][t] for s in scored for t in scored[s][a])
        rows.append([f"{ARM_NAMES[a]} vs {ARM_NAMES[b]}: won / lost, McNemar p", f"{wins} / {losses}",
                     f"{mcnemar(wins, losses):.3f}"])
    count = len(next(iter(scored.values()))["grpo"])
    what = ("Training-world validation ({n} level-1 tasks of `{t}`; the split recipes are chosen on)"
            if folder == "validation" else "Long files ({n} level-1 tasks of `{t}`, another world; answers only "
            "code can compute)")
    dropped = (f"; left out: {len(left_out)} whose question a training pool also asks ({', '.join(left_out)})"
               if left_out else "")
    return (what.format(n=count, t=tasks or args.validation) + f"{dropped}, seeds {sorted(scored)}:\n\n"
            + markdown_table(["arm", "success % per seed", "mean"], rows))


def asked_by_pools(validation: str, size: int, run_args: dict) -> set[str]:
    """Ids of the level-1 tasks of ``validation`` (``<split>@<seed>``) whose question the run's warm-up pool or RL
    pool also asks (``run_args``: the run's ``args.json``; the trainer's defaults where a key is missing). The
    split's seeds are disjoint from the pools', but the training world is one world: a question about one of its
    few countries, say, recurs at other seeds."""
    import dataclasses

    from agents.learner.config import Args, make_rl_pool, make_task_pool
    from agents.learner.heldout import eval_tasks_of

    names = {f.name for f in dataclasses.fields(Args)}
    train_args = Args(**{"tasks": "train-easy", "task_pool_size": 48,
                         **{k: v for k, v in run_args.items() if k in names}, "iterations": 0})
    warm = make_task_pool(train_args)
    asked = {t.question for pool in (warm, make_rl_pool(train_args, warm)) for t in pool.tasks}
    return {t.task_id for t in eval_tasks_of(validation, 1, size)[1] if t.question in asked}


def main(argv: list[str] | None = None) -> str:
    """Run the missing arms of every seed, then print (and write) the report."""
    args, args.extra = parse_with_extra(BenchArgs, argv, description=__doc__)
    if not args.report_only:
        for seed in args.seeds:
            started = time.time()
            run_seed(seed, args)
            print(f"seed {seed} done in {(time.time() - started) / 60:.1f} min", flush=True)
    body = report(args)
    print(body)
    if not args.no_write:
        write_section(f"{TITLE}, {args.label}" if args.label else TITLE, body)
    return body


if __name__ == "__main__":
    main()
