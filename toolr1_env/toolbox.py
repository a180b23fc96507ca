"""Which tools an episode gets: the task set's, the real web's, the media models' and the user's.

Tools come in two groups. *Listed* tools are shown to the agent in its prompt (a Python signature with the
docstring). *Hidden* tools are callable from the agent's code too but left out of the prompt: aliases
(``read_page`` next to the real web's ``visit_page``, ``visit_page`` next to the bundled suite's
``read_page``, so an agent used to either world works in both) and the host tools that ``inspect_file``
hands images and audio to (:data:`~toolr1_env.readers.VISION_TOOL`,
:data:`~toolr1_env.readers.TRANSCRIPTION_TOOL`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toolr1_env.media_models import ModelEndpoint, make_transcription_tool, make_vision_tool
from toolr1_env.readers import TRANSCRIPTION_TOOL, VISION_TOOL
from toolr1_env.tasks import TaskSet
from toolr1_env.web import WebConfig, make_web_tools

Tools = dict[str, Callable[..., Any]]
WebSpec = WebConfig | str | Mapping[str, Any] | None
EndpointSpec = ModelEndpoint | Mapping[str, Any] | None


@dataclass
class Toolbox:
    """The tools of an environment: ``listed`` (in the prompt) and ``hidden`` (callable, not shown)."""

    listed: Tools
    hidden: Tools

    def all(self) -> Tools:
        """Every tool by name, as the sandbox gets them (a listed tool wins over a hidden one)."""
        return {**self.hidden, **self.listed}


def build_toolbox(task_set: TaskSet, *, web: WebSpec = None, vision: EndpointSpec = None,
                  transcription: EndpointSpec = None,
                  user_tools: Sequence[Callable[..., Any]] | Mapping[str, Callable[..., Any]] = ()) -> Toolbox:
    """Assemble the tools of an environment over ``task_set``.

    Args:
        task_set: its ``tools`` are listed, its ``hidden_tools`` hidden.
        web: real-web tools (see :meth:`WebConfig.parse`): ``web_search`` and ``visit_page`` listed,
            ``read_page`` hidden. Refused for a task set that brings its own ``web_search`` (the bundled
            suite's offline web).
        vision, transcription: endpoints for ``inspect_file``'s images and audio (see
            :meth:`ModelEndpoint.parse`), added as hidden host tools.
        user_tools: extra tools, listed; they win over every other tool of the same name.
    """
    listed: Tools = {t.__name__: t for t in task_set.tools}
    hidden: Tools = {t.__name__: t for t in task_set.hidden_tools}
    web_config = WebConfig.parse(web)
    if web_config is not None:
        if "web_search" in listed:
            raise ValueError(f"task set {task_set.name!r} brings its own web_search (the bundled suite's "
                             "offline web): web= is for GAIA folders and your own tasks")
        web_search, visit_page, read_page = make_web_tools(web_config)
        listed.update(web_search=web_search, visit_page=visit_page)
        hidden["read_page"] = read_page
    vision_endpoint = ModelEndpoint.parse(vision, "vision")
    if vision_endpoint is not None:
        hidden[VISION_TOOL] = make_vision_tool(vision_endpoint)
    transcription_endpoint = ModelEndpoint.parse(transcription, "transcription")
    if transcription_endpoint is not None:
        hidden[TRANSCRIPTION_TOOL] = make_transcription_tool(transcription_endpoint)
    extra = dict(user_tools) if isinstance(user_tools, Mapping) else {t.__name__: t for t in user_tools}
    listed.update(extra)
    for name in extra:
        hidden.pop(name, None)
    return Toolbox(listed=listed, hidden=hidden)
