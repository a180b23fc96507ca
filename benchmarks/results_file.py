"""Write one benchmark's table into ``benchmarks/RESULTS.md`` under its own heading, with provenance."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = ("# Benchmark results\n\nEvery table below was written by the script named in it; "
          "rerun the command to reproduce.\n")


def machine() -> str:
    """A one-line description of this machine."""
    cpus = os.cpu_count()
    mem = ""
    try:
        kib = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{platform.machine()}, {cpus} CPUs{mem}, Linux {platform.release()}, Python {platform.python_version()}"


def code_commit(paths: Sequence[str] = ("agents", "toolr1_env", "benchmarks")) -> str:
    """The checkout's short commit, with ``+uncommitted`` when tracked files under ``paths`` differ from it
    (``unknown`` outside a git checkout): the provenance every benchmark records."""
    root = RESULTS.parent.parent

    def git(*command: str) -> str:
        try:
            done = subprocess.run(["git", *command], cwd=root, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+uncommitted" if git("status", "--porcelain", "--untracked-files=no", "--", *paths) else "")


def write_section(title: str, body: str) -> Path:
    """Replace (or append) the ``## title`` section of RESULTS.md with ``body`` plus provenance lines."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = ["-m", spec.name] if spec is not None else sys.argv[:1]  # python -m benchmarks.x, or a script
    command = "python " + " ".join(shlex.quote(a) for a in [*program, *sys.argv[1:]])
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"## {title}\n\n- command: `{command}`\n- machine: {machine()}\n- date: {stamp}\n\n"
               f"{body.strip()}\n")
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    parts = text.split("\n## ")
    head, sections = parts[0], ["## " + p for p in parts[1:]]
    sections = [s for s in sections if not s.startswith(f"## {title}\n")] + [section]
    RESULTS.write_text(head.rstrip() + "\n\n" + "\n".join(s.rstrip() + "\n" for s in sections))
    return RESULTS


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
