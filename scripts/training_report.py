"""Print the tables of a training run's learning result (markdown) from its run folder.

    python scripts/training_report.py runs/default-cpu > /tmp/tables.md

Reads ``metrics.jsonl``, ``summary.json`` and ``args.json`` written by ``agents/train_grpo.py``; used to
write ``docs/training_result.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def report(run_dir: Path) -> str:
    """Held-out evaluation, per-iteration training and timing tables."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    summary = json.loads((run_dir / "summary.json").read_text())
    evals = [(r["step"], r) for r in rows if "eval/success" in r]
    train = [r for r in rows if "reward/mean" in r]
    out = [f"Wall time: {summary['wall_seconds'] / 60:.1f} minutes for {summary['iterations']:.0f} iterations "
           f"({summary['online_rollouts']:.0f} online episodes).", "", "## Held-out success (greedy, exact match)", ""]
    levels = sorted({k.rsplit("level", 1)[1] for _, r in evals for k in r if k.startswith("eval/success_level")})
    out.append(table(["iteration", "success", *[f"level {lv}" for lv in levels], "answered", "code ran cleanly",
                      "had an error", "recovered (error, then correct)", "turns", "repeated 4-grams",
                      "turns cut at max_new_tokens", "episodes cut at max_episode_tokens"],
                     [[step, f"{r['eval/success']:.3f}",
                       *[f"{r.get(f'eval/success_level{lv}', 0):.3f}" for lv in levels],
                       f"{r['eval/answered']:.3f}", f"{r['eval/exec_success']:.3f}",
                       f"{r.get('eval/had_error', 0):.3f}",
                       f"{r.get('eval/recovered', 0):.3f}", f"{r.get('eval/turns', 0):.2f}",
                       f"{r.get('eval/repeat_ngram_rate', 0):.3f}", f"{r.get('eval/turn_length_cut', 0):.3f}",
                       f"{r.get('eval/token_limit_cut', 0):.3f}"] for step, r in evals]))
    temperature = json.loads((run_dir / "args.json").read_text()).get("temperature", 1.0)
    out += ["", f"## Training (sampled at temperature {temperature:g})", ""]
    out.append(table(
        ["iteration", "mean reward", "answer score", "answered", "turns", "recovered", "repeated 4-grams",
         "turns cut", "zero-signal groups (before -> after queue)", "from queue", "entropy", "online episodes so far",
         "wall s"],
        [[r["step"], f"{r['reward/mean']:.3f}", f"{r['reward/answer_score']:.3f}", f"{r['reward/answered']:.3f}",
          f"{r.get('reward/turns', 0):.2f}", f"{r.get('reward/recovered', 0):.3f}",
          f"{r.get('reward/repeat_ngram_rate', 0):.3f}", f"{r.get('reward/turn_length_cut', 0):.3f}",
          f"{r['groups/zero_signal_before']:.2f} -> {r['groups/zero_signal_after']:.2f}",
          f"{r.get('batch/from_queue', 0):.0f}", f"{r.get('update/entropy', float('nan')):.2f}",
          f"{r['rollout/online_total']:.0f}", f"{r.get('time/elapsed_s', 0):.0f}"] for r in train]))
    rollout = sum(r.get("rollout/wall_s", 0.0) for r in train)
    update = sum(r.get("time/update_s", 0.0) for r in train)
    evaluation = sum(r.get("time/eval_s", 0.0) for _, r in evals)
    total = summary["wall_seconds"]
    out += ["", "## Where the time went", "",
            table(["part", "seconds", "share"],
                  [[name, f"{value:.0f}", f"{value / total:.0%}"] for name, value in
                   [("rollouts (sampling + sandboxes)", rollout), ("updates (re-scoring + loss + optimiser)", update),
                    ("evaluations", evaluation), ("start-up, demonstrations, checkpoints, logging",
                                                  total - rollout - update - evaluation)]])]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(report(Path(sys.argv[1])))
