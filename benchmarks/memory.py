"""Memory of a process tree, the way the benchmarks report it: proportional set size (PSS) from ``/proc``.

PSS divides every shared page among the processes that map it, so the forked sandbox workers, which share
their fork server's pages, are counted once; a sum of RSS would count those pages once per process.

:class:`MemoryWatch` samples a running command every few seconds and keeps the peak and a timeline
(seconds since start, MiB of the root process, MiB of its descendants), so a report can say which phase
peaked and whether the model or the sandboxes hold the memory.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    return children


def process_pss_mib(pid: int) -> float:
    """PSS of one process in MiB (0 when it is gone or unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (not ``root`` itself)."""
    children = _children_by_parent()
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def tree_pss_mib(root: int) -> float:
    """PSS of a process and all its descendants, in MiB (shared pages counted once)."""
    return process_pss_mib(root) + sum(process_pss_mib(pid) for pid in descendants(root))


@dataclass
class MemorySample:
    """One look at the tree: seconds since the watch started, MiB of the root and of its descendants."""

    seconds: float
    root_mib: float
    descendants_mib: float

    @property
    def total_mib(self) -> float:
        """The whole tree."""
        return self.root_mib + self.descendants_mib


@dataclass
class MemoryWatch:
    """Sample a process tree every ``interval`` seconds in a thread until :meth:`stop`.

    Example::

        watch = MemoryWatch(process.pid).start()
        process.wait()
        watch.stop()
        print(watch.peak_gib, watch.peak.root_mib)
    """

    pid: int
    interval: float = 2.0
    samples: list[MemorySample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.perf_counter()

    def start(self) -> MemoryWatch:
        """Begin sampling; returns self."""
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take a last sample and stop."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            root = process_pss_mib(self.pid)
            rest = sum(process_pss_mib(pid) for pid in descendants(self.pid))
            if root or rest:
                self.samples.append(MemorySample(time.perf_counter() - self._start, root, rest))
            self._stop.wait(self.interval)

    @property
    def peak(self) -> MemorySample:
        """The sample with the largest whole-tree PSS (zeros when nothing was sampled)."""
        return max(self.samples, key=lambda s: s.total_mib, default=MemorySample(0.0, 0.0, 0.0))

    @property
    def peak_gib(self) -> float:
        """The largest whole-tree PSS seen, in GiB."""
        return self.peak.total_mib / 1024

    def timeline(self) -> list[dict[str, float]]:
        """Every sample as a plain record (for a JSON file)."""
        return [{"seconds": round(s.seconds, 1), "root_mib": round(s.root_mib, 1),
                 "descendants_mib": round(s.descendants_mib, 1)} for s in self.samples]
