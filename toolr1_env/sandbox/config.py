"""Records of the sandbox's public surface: its configuration, a run's result, and its error type."""

from __future__ import annotations

from dataclasses import dataclass

#: Imports allowed by default: the useful standard library plus numpy and pandas. ``os``, ``sys``,
#: ``subprocess``, ``socket``, ``ctypes``, ``importlib`` and friends are left out on purpose.
DEFAULT_ALLOWED_IMPORTS: tuple[str, ...] = (
    "__future__", "array", "base64", "bisect", "calendar", "cmath", "collections", "copy", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "enum", "fractions", "functools", "glob", "hashlib", "heapq",
    "html", "io", "itertools", "json", "math", "numbers", "operator", "pathlib", "pprint", "random", "re",
    "statistics", "string", "textwrap", "time", "typing", "unicodedata", "uuid", "xml", "zipfile",
    "zoneinfo", "numpy", "pandas", "openpyxl", "docx", "pypdf",
)
#: Packages hidden from the sandbox's view of site-packages (answers and generators live there).
HIDDEN_PACKAGES: tuple[str, ...] = ("toolr1_env", "toolr1", "agents")
#: The final-answer function every sandbox offers; user tools may not take its name.
FINAL_ANSWER = "final_answer"


class SandboxError(RuntimeError):
    """The sandbox itself failed (could not start, broke its protocol): our bug or the machine's."""


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and policy of one sandbox. Every limit applies to each episode's worker separately."""

    step_timeout: float = 10.0
    """Wall-clock seconds one ``run`` may take (host tool calls included) before the worker is killed."""
    memory_limit_mb: int = 4096
    """Address-space limit of a worker (RLIMIT_AS), in MiB; numpy and pandas alone reserve ~1 GiB."""
    cpu_time_limit: int = 300
    """CPU seconds a worker may use over the whole episode (RLIMIT_CPU)."""
    max_processes: int = 64
    """Processes the unprivileged sandbox user may own (RLIMIT_NPROC; only when the host is root)."""
    max_file_size_mb: int = 64
    """Largest file a worker may write (RLIMIT_FSIZE), in MiB."""
    max_open_files: int = 256
    """Open file descriptors per worker (RLIMIT_NOFILE)."""
    max_output_chars: int = 10_000
    """Cap on captured stdout and on stderr, each; the head and tail halves are kept."""
    max_value_chars: int = 4_000
    """Cap on the ``repr`` of a trailing expression."""
    max_code_chars: int = 200_000
    """Longer actions are refused with an error result, without running."""
    allowed_imports: tuple[str, ...] | None = DEFAULT_ALLOWED_IMPORTS
    """Top-level modules agent code may import; ``None`` allows every import."""
    network: bool = False
    """Allow network access (off by default: the sandbox gets no network namespace, TCP is blocked)."""
    preload: tuple[str, ...] = ("numpy", "pandas")
    """Modules the fork server imports once so episodes start warm; missing ones are skipped."""
    use_bwrap: bool | None = None
    """Use bubblewrap namespaces: None = when available, True = required, False = never."""
    use_landlock: bool | None = None
    """Use Landlock: None = when the kernel has it, True = required, False = never."""
    drop_privileges: bool = True
    """When the host is root, run agent code as ``nobody``."""
    extra_read_paths: tuple[str, ...] = ()
    """Additional host paths agent code may read (under Landlock)."""
    startup_timeout: float = 60.0
    """Seconds to wait for the fork server (interpreter + preloads) and for a worker to come up."""


@dataclass(frozen=True)
class ExecResult:
    """What one ``run`` produced. ``error`` is a traceback written for the model to read."""

    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    error_type: str | None = None
    final_answer: str | None = None
    final_answer_called: bool = False
    timed_out: bool = False
    worker_died: bool = False
    duration: float = 0.0
    infra_error: str | None = None
    """Set when a host tool called during the run failed for a reason outside the agent's control (it
    raised :class:`toolr1_env.infra.InfraError`); the agent saw the failure as a ``ToolError``."""
    infra_kind: str | None = None
    """Which service failed (``"web"``, ``"vision"``, ...), with ``infra_error``."""

    @property
    def ok(self) -> bool:
        """True when the code ran to completion (or to ``final_answer``) without an error."""
        return self.error is None and not self.timed_out and not self.worker_died

    def render(self) -> str:
        """The result as the text a model observes: output, trailing value, then any error."""
        parts = []
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.value is not None:
            parts.append(f"Out: {self.value}")
        if self.stderr:
            parts.append(f"[stderr]\n{self.stderr.rstrip()}")
        if self.error:
            parts.append(self.error)
        if self.final_answer_called:
            parts.append(f"final_answer received: {self.final_answer}")
        if not parts:
            parts.append("(the code ran and printed nothing)")
        return "\n".join(parts)
