"""Demonstrations in a harness's own format: the harness writes the prompts, a script writes the replies.

A harness with its own prompts (smolagents' ``CodeAgent``: its system prompt, its ``New task:`` message, its
``Thought: ... <code> ... </code>`` reply format) cannot imitate demonstrations rendered in our rollout's chat:
the tokens would differ from every prompt it sends. So the demonstrations are *played through the harness*:
:class:`DemonstrationBackend` is the recording proxy with the sampler swapped for a script, answering the
``k``-th call of an episode with the ``k``-th scripted reply of its task. The harness runs unchanged (its
parser, its executor, its ``final_answer``), the recorder stores its exact prompt ids and the reply's ids as
for a sampled call, and the environment's scorer pays the episode. :func:`warm_up_through_harness` then
imitates the verified episodes with the learner's own supervised warm-up
(:func:`agents.learner.warmup.warm_up`: correct answer, no execution error, nothing cut off), so what is
learned is exactly the token sequence the harness will show the policy in RL.

The scripts come from the task's bundled reference solution, one code step per call
(:func:`code_agent_script`), written as ``CodeAgent``'s compact prompt asks: one short thought, then code
between ``<code>`` and ``</code>``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from agents.learner.demonstrations import reference_turns
from agents.learner.policy import Policy
from agents.learner.records import Generation
from agents.learner.update import UpdateConfig
from agents.learner.warmup import verified, warm_up
from agents.proxy.backend import PolicyBackend, ProxyConfig
from agents.proxy.batcher import SampleJob
from agents.proxy.harness import EnvScorer, Harness, play_episodes
from agents.proxy.recorder import ProxyRequestError, Recorder
from agents.proxy.server import ProxyServer
from agents.proxy.transitions import ProxyEpisode
from toolr1_env.tasks import Task

#: The thought a scripted ``CodeAgent`` reply opens with (the compact prompt's example uses the same one).
THOUGHT = "I compute it with Python."


def code_agent_script(task: Task, thought: str = THOUGHT) -> list[str]:
    """``CodeAgent`` replies that solve ``task`` with its reference solution, one per code step (empty when the
    task has none)."""
    return [f"Thought: {thought}\n<code>\n{code}\n</code>" for code in reference_turns(task)]


class DemonstrationBackend(PolicyBackend):
    """The recording proxy answering from scripts: call ``k`` of an episode of task ``t`` gets ``scripts[t][k]``.

    Requests are validated, prompt ids built (token in, token out) and calls recorded exactly as by
    :class:`PolicyBackend`; only the completion differs. A reply is tokenised as the policy would emit it:
    cut after the first stop string the request sends (the sampler stops on the token that completes one,
    and the proxy returns the text before it), else ended with the end-of-turn token; cut to the call's
    token budget (``finish_reason`` ``length``). Its recorded log-probs are 0: the warm-up scores the
    tokens with its own forward pass. A call beyond the script is refused (the harness sees an error; its
    episode is an infrastructure error and is not imitated).
    """

    def __init__(self, policy: Policy, scripts: Mapping[str, Sequence[str]], recorder: Recorder | None = None,
                 config: ProxyConfig | None = None) -> None:
        super().__init__(policy, recorder, config)
        self.scripts = {task_id: list(replies) for task_id, replies in scripts.items()}

    def generate(self, episode_id: str, job: SampleJob) -> Generation:
        """The next scripted reply of the episode's task, as token ids (see the class docstring)."""
        log = self.recorder.get(episode_id)
        script = self.scripts.get(log.task_id, [])
        if len(log.calls) >= len(script):
            raise ProxyRequestError(f"task {log.task_id!r}: the demonstration has {len(script)} replies, and this "
                                    f"is call {len(log.calls) + 1}", status=409, code="script_exhausted")
        text = script[len(log.calls)]
        stops = [i + len(s) for s in job.stop if (i := text.find(s)) >= 0]
        end_of_turn = not stops
        text = text[: min(stops)] if stops else text
        ids = self.policy.tokenize(text)
        if end_of_turn:
            ids.append(int(self.policy.tokenizer.eos_token_id))
        finish = "stop" if stops else "eos"
        if len(ids) > job.max_new_tokens:
            ids, finish = ids[: job.max_new_tokens], "length"
        return Generation(ids, [0.0] * len(ids), finish, self.policy.decode_text(ids))  # type: ignore[arg-type]


def play_demonstrations(policy: Policy, harness: Harness, tasks: Sequence[Task], scorer: EnvScorer, *,
                        config: ProxyConfig | None = None, concurrency: int = 8) -> list[ProxyEpisode]:
    """Play every task with a script (:func:`code_agent_script`) once through ``harness``; the scored episodes.

    Tasks without a reference solution are skipped. The policy is not called (nothing is sampled).
    """
    scripted = [t for t in tasks if code_agent_script(t)]
    scripts = {t.task_id: code_agent_script(t) for t in scripted}
    backend = DemonstrationBackend(policy, scripts, config=config)
    with ProxyServer(backend) as server:
        return play_episodes(server, harness, scripted, group_size=1, scorer=scorer, concurrency=concurrency,
                             group_prefix="demo-")


def warm_up_through_harness(policy: Policy, episodes: Sequence[ProxyEpisode], passes: int, lr: float, *,
                            seed: int = 0, batch_size: int = 16) -> dict[str, Any]:
    """Supervised passes over the verified transitions of ``episodes`` (a fresh AdamW at ``lr``); the metrics of
    :func:`agents.learner.warmup.warm_up` plus how many episodes were played and verified.

    Raises:
        ValueError: no episode is verified (every script failed in the harness: nothing to imitate).
    """
    transitions = [t for e in episodes if e.infra_error is None for t in e.transitions]
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=lr)
    metrics: dict[str, Any] = warm_up(policy, optimizer, transitions, range(passes), UpdateConfig(),
                                      random.Random(seed), batch_size=batch_size)
    metrics["warmup/episodes"] = float(len(episodes))
    metrics["warmup/verified_episodes"] = float(sum(all(verified(t) for t in e.transitions) and bool(e.transitions)
                                                    and e.infra_error is None for e in episodes))
    return metrics
