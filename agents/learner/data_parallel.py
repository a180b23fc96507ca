"""Data parallelism across processes: every rank holds the same adapter and makes the same update.

The model is not wrapped in DDP (sampling, the adapter switch and saving need the bare PEFT model), so
the collectives are explicit, few, and all here:

* **Identical start.** :meth:`DataParallel.broadcast_` copies rank 0's adapter to every rank after it is
  built (ranks also seed identically before ``get_peft_model``; the broadcast makes it certain).
* **One batch, split.** The trainer chooses the iteration's tasks with the same seed on every rank, each
  rank plays a shard of the groups, and :meth:`DataParallel.gather_objects` gives every rank the whole
  batch: groups, the sample queue (one replica per rank, updated identically, so any rank's copy is the
  checkpoint) and advantages are then computed identically everywhere, and each rank trains on its shard.
* **One global denominator.** The token-level loss divides by the number of trained tokens of the *whole*
  batch (:meth:`DataParallel.sum_floats`), and gradients are summed, not averaged: the update equals one
  process holding the whole batch, to float tolerance.
* **One all-reduce per optimiser step**, of a flat buffer holding every trainable parameter's gradient
  (zeros where a rank has none, so no rank skips a collective), a non-finite flag and the metric sums:
  a NaN on one rank makes every rank skip the step together.
* **Failures end every rank.** A rank that raises leaves a note (:meth:`DataParallel.record_failure`) and exits;
  its peers, blocked in a collective, get an error from the backend (gloo: at once; NCCL: the launcher
  ends them) and raise :class:`PeerFailedError` quoting the note, instead of waiting forever.
* **Checksums.** :meth:`DataParallel.gather_checksums` gathers an exact checksum of every rank's adapter
  (logged as ``dp/adapter_checksum/rank{i}``): equal numbers mean bit-identical weights.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

#: Seconds a rank waits for a failed peer's note after a collective broke.
NOTE_WAIT_S = 5.0


class PeerFailedError(RuntimeError):
    """Another data-parallel process failed; this one stops too (the message quotes the failure)."""


def checksum(tensors: Sequence[torch.Tensor]) -> int:
    """A checksum of the tensors' bytes (32-bit words summed mod 2^31 - 1): equal for bit-identical tensors."""
    if not tensors:
        return 0
    raw = torch.cat([t.detach().reshape(-1).contiguous().view(torch.uint8) for t in tensors])  # [bytes]
    pad = (-raw.numel()) % 4
    if pad:
        raw = torch.cat([raw, raw.new_zeros(pad)])
    words = raw.view(torch.int32).long()  # [bytes / 4]
    return int(words.remainder(2**31 - 1).sum().remainder(2**31 - 1))


class DataParallel:
    """The collectives of one data-parallel process (a no-op group of one when ``world_size == 1``).

    Args:
        rank: this process's index.
        world_size: number of processes; above 1, ``torch.distributed`` must be initialised (accelerate does).
        device: where collective buffers live (the model's device: CUDA for NCCL, CPU for gloo).
        failure_dir: a folder all ranks can read, for failure notes (None: no notes, generic messages).
    """

    def __init__(self, rank: int = 0, world_size: int = 1, device: torch.device | str = "cpu",
                 failure_dir: Path | None = None) -> None:
        self.rank, self.world_size, self.device = rank, world_size, torch.device(device)
        self.failure_dir = failure_dir
        if failure_dir is not None:
            failure_dir.mkdir(parents=True, exist_ok=True)
            (failure_dir / f"rank{rank}.txt").unlink(missing_ok=True)

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 (writes logs and checkpoints)."""
        return self.rank == 0

    def close(self) -> None:
        """Take the process group down, after a run that ended normally on every rank.

        Left to interpreter teardown, a gloo process could abort ("terminate called without an active
        exception") after its work was done. Not called after a failure: a peer may be gone, and the
        launcher ends the processes then.
        """
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def shard(self, items: Sequence[Any]) -> list[Any]:
        """This rank's share of ``items``: every ``world_size``-th, starting at ``rank``."""
        return list(items[self.rank :: self.world_size])

    # --------------------------------------------------------------------------------- collectives

    def all_sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks, in place; returns it."""
        if self.enabled:
            with self._collective("all_reduce"):
                import torch.distributed as dist

                dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_floats(self, values: Sequence[float]) -> list[float]:
        """Sum each value over ranks (float64)."""
        if not self.enabled:
            return [float(v) for v in values]
        buffer = torch.tensor(list(values), dtype=torch.float64, device=self.device)  # [k]
        return self.all_sum_(buffer).tolist()

    def broadcast_(self, tensors: Sequence[torch.Tensor], src: int = 0) -> None:
        """Copy rank ``src``'s values of ``tensors`` into every rank's, in place (one flat broadcast per dtype)."""
        if not self.enabled or not tensors:
            return
        import torch.distributed as dist

        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        with torch.no_grad():
            for group in by_dtype.values():
                flat = torch.cat([t.detach().reshape(-1) for t in group]).to(self.device)  # [n]
                with self._collective("broadcast"):
                    dist.broadcast(flat, src=src)
                offset = 0
                for t in group:
                    t.copy_(flat[offset : offset + t.numel()].view_as(t))
                    offset += t.numel()

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        with self._collective("all_gather_object"):
            dist.all_gather_object(out, obj)
        return out

    def gather_checksums(self, tensors: Sequence[torch.Tensor]) -> list[int]:
        """:func:`checksum` of every rank's ``tensors``, in rank order, on every rank."""
        mine = checksum(tensors)
        if not self.enabled:
            return [mine]
        import torch.distributed as dist

        buffer = torch.tensor([mine], dtype=torch.int64, device=self.device)  # [1]
        out = [torch.zeros_like(buffer) for _ in range(self.world_size)]
        with self._collective("all_gather"):
            dist.all_gather(out, buffer)
        return [int(t.item()) for t in out]

    # ------------------------------------------------------------------------------------ failures

    def record_failure(self, exc: BaseException) -> None:
        """Leave a note naming ``exc`` for the peers (call it before this process exits on an exception).

        A :class:`PeerFailedError` is not this rank's own failure and leaves no note.
        """
        if self.enabled and self.failure_dir is not None and not isinstance(exc, PeerFailedError):
            (self.failure_dir / f"rank{self.rank}.txt").write_text(f"{type(exc).__name__}: {exc}"[:2000])

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block; if it raises, :meth:`record_failure` the exception, then re-raise it."""
        try:
            yield
        except BaseException as exc:
            self.record_failure(exc)
            raise

    @contextmanager
    def _collective(self, name: str) -> Iterator[None]:
        """Turn a collective broken by a peer's exit into :class:`PeerFailedError` quoting the peer's note."""
        try:
            yield
        except RuntimeError as exc:
            raise PeerFailedError(self._failure_message(name, exc)) from exc

    def _failure_message(self, name: str, exc: Exception) -> str:
        notes: dict[int, str] = {}
        deadline = time.monotonic() + NOTE_WAIT_S
        while self.failure_dir is not None and not notes and time.monotonic() < deadline:
            for path in sorted(self.failure_dir.glob("rank*.txt")):
                rank = int(path.stem[4:])
                if rank != self.rank:
                    notes[rank] = path.read_text()
            if not notes:
                time.sleep(0.1)
        if notes:
            failed = "; ".join(f"process {rank} raised {text}" for rank, text in sorted(notes.items()))
            return f"data-parallel process {self.rank} stops because {failed}"
        return (f"data-parallel process {self.rank} stops: {name} failed, a peer process exited or stopped "
                f"answering ({type(exc).__name__}: {str(exc)[:300]})")


def from_accelerator(accelerator: Any, failure_dir: Path | None = None) -> DataParallel:
    """The :class:`DataParallel` of an ``accelerate.Accelerator``'s process group.

    The failure folder gets a per-run subfolder named by rank 0, so notes of an earlier run are never read.
    """
    dp = DataParallel(accelerator.process_index, accelerator.num_processes, accelerator.device)
    if dp.enabled and failure_dir is not None:
        stamp = dp.gather_objects(f"{time.time_ns()}" if dp.is_main else None)[0]
        dp = DataParallel(dp.rank, dp.world_size, dp.device, failure_dir / stamp)
    return dp
