"""One sampling thread for every episode's requests: concurrent calls with equal settings share a batch.

Harness episodes run in their own threads and each waits on its HTTP call; the policy is one model. The
:class:`Batcher` thread takes the oldest waiting request, waits ``wait_s`` for more, and samples every
waiting request with the same settings (temperature, top-p, stop sequences) in one ``Policy.sample``
call, up to ``max_batch`` rows: batching is where a CPU or GPU gets its throughput. Each row keeps its own
token budget (a row that ran past it is cut there, ``finish_reason="length"``).

Stop sequences. ``Policy.sample`` reads its stop rules from ``policy.config``; the batcher sets them for
the duration of one call (only this thread samples while a proxy runs) and restores the config after.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

from agents.learner.policy import Policy
from agents.learner.records import Generation


@dataclass
class SampleJob:
    """One request's sampling work."""

    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    future: Future = field(default_factory=Future)

    @property
    def key(self) -> tuple:
        """Requests with equal keys can share one ``Policy.sample`` call."""
        return (self.temperature, self.top_p, self.stop)


class Batcher:
    """The sampling thread (see the module docstring); :meth:`sample` blocks until its job is done."""

    def __init__(self, policy: Policy, *, max_batch: int = 16, wait_s: float = 0.02, seed: int = 0,
                 stop_at_code_end: bool = False) -> None:
        self.policy = policy
        self.max_batch = max(1, max_batch)
        self.wait_s = wait_s
        self.stop_at_code_end = stop_at_code_end
        self.generator = torch.Generator().manual_seed(seed)
        self.batches = 0
        self.rows = 0
        self._jobs: queue.Queue[SampleJob | None] = queue.Queue()
        self._held: list[SampleJob] = []  # jobs taken from the queue that did not fit the last batch
        self._thread = threading.Thread(target=self._loop, name="proxy-batcher", daemon=True)
        self._thread.start()

    def sample(self, job: SampleJob) -> Generation:
        """Queue ``job`` and wait for its generation (re-raises the sampler's exception)."""
        if not self._thread.is_alive():
            raise RuntimeError("the proxy's sampling thread has stopped")
        self._jobs.put(job)
        return job.future.result()

    def close(self) -> None:
        """Stop the thread after the jobs already queued."""
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _take(self) -> list[SampleJob] | None:
        """The next batch: the oldest job plus every waiting job with its key (up to ``max_batch``)."""
        if self._held:
            first = self._held.pop(0)
        else:
            first = self._jobs.get()
            if first is None:
                return None
        waiting = list(self._held)
        self._held.clear()
        try:
            waiting.append(self._jobs.get(timeout=self.wait_s))
            while True:
                waiting.append(self._jobs.get_nowait())
        except queue.Empty:
            pass
        if None in waiting:  # close() arrived: finish these jobs, then stop
            waiting.remove(None)
            self._jobs.put(None)
        batch = [first]
        for job in waiting:
            if job.key == first.key and len(batch) < self.max_batch:
                batch.append(job)
            else:
                self._held.append(job)
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                generations = self._sample(batch)
            except BaseException as exc:  # noqa: BLE001 - every waiting request must hear of the failure
                for job in batch:
                    job.future.set_exception(exc)
                continue
            for job, generation in zip(batch, generations, strict=True):
                job.future.set_result(generation)

    def _sample(self, batch: Sequence[SampleJob]) -> list[Generation]:
        first = batch[0]
        saved = self.policy.config
        self.policy.config = dataclasses.replace(saved, stop_strings=tuple(first.stop),
                                                 stop_at_code_end=self.stop_at_code_end)
        try:
            generations = self.policy.sample([job.prompt_ids for job in batch],
                                             max_new_tokens=max(job.max_new_tokens for job in batch),
                                             temperature=first.temperature, top_p=first.top_p,
                                             generator=self.generator)
        finally:
            self.policy.config = saved
        self.batches += 1
        self.rows += len(batch)
        return [self._fit(job, g) for job, g in zip(batch, generations, strict=True)]

    def _fit(self, job: SampleJob, generation: Generation) -> Generation:
        """Cut a row that ran past its own budget (the batch ran to the largest one)."""
        if len(generation.token_ids) <= job.max_new_tokens:
            return generation
        ids = generation.token_ids[: job.max_new_tokens]
        text = self.policy.decode_text(ids)
        return Generation(ids, generation.logprobs[: job.max_new_tokens], "length", text)
