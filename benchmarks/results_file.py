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
    """A one-line description of this machine (the CPU's model and vector unit included: see :func:`cpu_kind`)."""
    cpus = os.cpu_count()
    mem = ""
    try:
        kib = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    try:
        cpu = f" ({cpu_kind(Path('/proc/cpuinfo').read_text())})"
    except OSError:
        cpu = ""
    return (f"{platform.machine()}{cpu}, {cpus} CPUs{mem}, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


#: CPU flags, widest first, and how a benchmark line names them.
_VECTOR_UNITS = (("amx_bf16", "AMX, native bf16"), ("avx512_bf16", "AVX512-BF16, native bf16"),
                 ("avx512f", "AVX512, bf16 emulated"), ("avx2", "AVX2, bf16 emulated"))


def cpu_kind(cpuinfo: str) -> str:
    """The CPU's model name and widest vector unit from the text of ``/proc/cpuinfo``, e.g. ``AMD EPYC, AVX2,
    bf16 emulated``: what sets a CPU run's speed, and whether ``--bf16`` autocast speeds it up (native) or slows
    it down (emulated)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    unit = next((name for flag, name in _VECTOR_UNITS if flag in flags), "no AVX2")
    return f"{fields.get('model name', 'unknown CPU')}, {unit}"


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
