"""One process of a 2-process gloo group for tests/test_data_parallel.py (started once per rank).

    RANK=r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=p python tests/dp_worker.py MODE OUT_DIR

Modes: ``update`` (rank-dependent adapter init, broadcast, then one update on this rank's shard of a fixed
batch; writes ``rank{r}.pt``); ``fail`` (the same, but rank 1's shard holds a token id outside the
vocabulary, so its forward pass raises while rank 0 waits in the gradient all-reduce). Each rank writes
``rank{r}.json``: ``{"checksums": [...]}`` or ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.learner.data_parallel import DataParallel  # noqa: E402
from agents.learner.model_loading import make_tiny_model  # noqa: E402
from agents.learner.policy import Policy, PolicyConfig  # noqa: E402
from agents.learner.records import Trajectory  # noqa: E402
from agents.learner.update import UpdateConfig, rescore, update_policy  # noqa: E402

CONFIG = UpdateConfig(micro_batch_size=2, max_grad_norm=1.0, epochs=2)
GROUP_SIZES = (3, 2, 3, 2)


def make_policy(seed: int = 0) -> Policy:
    """The tiny policy; ``seed`` sets the adapter's initial weights."""
    model, tokenizer = make_tiny_model(seed=0)
    torch.manual_seed(seed)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8))
    with torch.no_grad():  # LoRA B starts at zero; make the adapter matter
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed + 1))
    return policy


def make_pairs(policy: Policy) -> list[tuple[Trajectory, float]]:
    """A fixed batch of groups (token ids from a seeded generator, old log-probs from the policy)."""
    generator = torch.Generator().manual_seed(7)
    pairs = []
    for g, size in enumerate(GROUP_SIZES):
        prompt = policy.encode_prompt([{"role": "user", "content": f"Task {g}: what is {g} + {g}?"}])
        for k in range(size):
            traj = Trajectory.start(f"task{g}", f"g{g}", prompt)
            n = 3 + int(torch.randint(0, 5, (1,), generator=generator))
            traj.append_generated(torch.randint(200, 4000, (n,), generator=generator).tolist(), [0.0] * n)
            traj.append_forced([600, 700])
            traj.append_generated(torch.randint(200, 4000, (2,), generator=generator).tolist(), [0.0] * 2)
            pairs.append((traj, float(k) - (size - 1) / 2))
    rescore(policy, [t for t, _ in pairs])  # ratio 1 at the start, as in training
    for traj, _ in pairs:
        traj.behaviour_logprobs = None
    return pairs


def shard(pairs: list[tuple[Trajectory, float]], rank: int, world: int) -> list[tuple[Trajectory, float]]:
    """Whole groups, round robin (the trainer's rule)."""
    order: dict[str, int] = {}
    for traj, _ in pairs:
        order.setdefault(traj.group_id, len(order))
    return [pair for pair in pairs if order[pair[0].group_id] % world == rank]


def main() -> int:
    mode, out = sys.argv[1], Path(sys.argv[2])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    dp = DataParallel(rank, world, "cpu", failure_dir=out / "notes")
    result: dict[str, object] = {}
    try:
        with dp.guard():
            reference = make_policy(0)
            pairs = make_pairs(reference)  # the same batch on every rank
            policy = make_policy(seed=100 + rank)  # a different adapter on each rank ...
            dp.broadcast_(policy.trainable_parameters())  # ... until rank 0's is copied everywhere
            result["checksums_after_broadcast"] = dp.gather_checksums(policy.trainable_parameters())
            policy = reference
            mine = shard(pairs, rank, world)
            if mode == "fail" and rank == 1:
                mine[0][0].token_ids[-1] = len(policy.tokenizer) + 10  # outside the embedding: the forward raises
            optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.5)
            result["metrics"] = update_policy(policy, optimizer, mine, CONFIG, dp=dp)
            result["checksums"] = dp.gather_checksums(policy.trainable_parameters())
            torch.save([p.detach() for p in policy.trainable_parameters()], out / f"rank{rank}.pt")
    except BaseException as exc:  # noqa: BLE001 - the test reads what each rank died of
        result["error"] = f"{type(exc).__name__}: {exc}"
        (out / f"rank{rank}.json").write_text(json.dumps(result))
        return 1
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
