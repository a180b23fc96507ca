"""A persistent on-disk cache of JSON values, safe across threads and processes, that computes each key once.

Each entry is one JSON file, ``<folder>/<namespace>/<aa>/<sha256>.json``, written atomically (a
temporary file renamed into place), so a crash never leaves a half-written entry and any number of
processes may share the folder. :meth:`DiskCache.get_or_compute` holds a per-key lock (a thread lock plus
an ``flock`` on a lock file) while it computes, so eight environments of a GRPO group asking for the same
page at the same moment fetch it once; the other seven wait and read the entry. Failures (exceptions)
are never cached. Entries do not expire: a rerun sees exactly what the first run saw (delete the folder
to refresh).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MISSING = object()


def default_cache_dir() -> Path:
    """``$TOOLR1_CACHE`` or ``~/.cache/toolr1``: the root of every cache of this package."""
    return Path(os.environ.get("TOOLR1_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "toolr1"))


class DiskCache:
    """JSON values keyed by ``(namespace, key)`` strings, stored under ``folder``.

    Args:
        folder: where the entries live (created on first write).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["folder"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"DiskCache({str(self.folder)!r})"

    def path(self, namespace: str, key: str) -> Path:
        """The file that holds the entry ``(namespace, key)``."""
        digest = hashlib.sha256(f"{namespace}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()
        return self.folder / namespace / digest[:2] / f"{digest}.json"

    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` when there is none (or the entry is unreadable)."""
        value = self._read(namespace, key)
        return default if value is _MISSING else value

    def put(self, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) atomically, replacing any earlier entry."""
        path = self.path(namespace, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"key": key, "value": value}, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_or_compute(self, namespace: str, key: str, compute: Callable[[], Any]) -> Any:
        """The cached value, or ``compute()`` stored and returned; one caller computes, the others wait."""
        value = self._read(namespace, key)
        if value is not _MISSING:
            return value
        path = self.path(namespace, key)
        with self._thread_lock(str(path)):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_suffix(".lock"), "a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes
                value = self._read(namespace, key)
                if value is _MISSING:
                    value = compute()
                    self.put(namespace, key, value)
        return value

    def _read(self, namespace: str, key: str) -> Any:
        try:
            with open(self.path(namespace, key), encoding="utf-8") as handle:
                entry = json.load(handle)
        except (OSError, ValueError):
            return _MISSING
        if not isinstance(entry, dict) or entry.get("key") != key:
            return _MISSING
        return entry.get("value")

    def _thread_lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())
