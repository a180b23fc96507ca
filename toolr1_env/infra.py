"""Infrastructure errors: failures outside the agent's control, reported apart from wrong answers.

A host tool that cannot reach its service (the web, a vision or transcription endpoint) raises
:class:`InfraError` with a ``kind``. The agent still sees the failure as a ``ToolError`` it can read, and
the environment records it: the episode's ``info["infra_error"]`` (a string, as for a judge outage) and
``info["infra_kind"]`` tell training and evaluation to leave the episode out instead of scoring an outage
as a wrong answer.
"""

from __future__ import annotations

#: The kinds of infrastructure the environment depends on (``info["infra_kind"]``).
WEB = "web"
JUDGE = "judge"
VISION = "vision"
TRANSCRIPTION = "transcription"
SANDBOX = "sandbox"
INFRA_KINDS = (WEB, JUDGE, VISION, TRANSCRIPTION, SANDBOX)


class InfraError(RuntimeError):
    """A service a tool depends on failed (unreachable, timed out, rate limited, answered garbage).

    Args:
        kind: which service: one of :data:`INFRA_KINDS` (other strings are allowed for user tools).
        message: what went wrong, for people and for the model.
    """

    def __init__(self, kind: str, message: str) -> None:
        if not kind:
            raise ValueError("InfraError needs a kind, e.g. 'web'")
        self.kind = kind
        super().__init__(message)

    def __reduce__(self) -> tuple:
        return (type(self), (self.kind, str(self)))
