"""Peak memory of one scoring forward + backward with a 150k-vocabulary tiny model (for tests/test_scoring.py).

    python tests/peak_memory_worker.py CHUNK_TOKENS   -> prints {"peak_mib": ..., "full_logits_mib": ...}

Run in a fresh process, so the process's peak resident set (``ru_maxrss``) measures this pass alone: the
growth over the resident set after the model is built and one warm-up pass has run.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from agents.learner.model_loading import make_tiny_model  # noqa: E402
from agents.learner.policy import Policy, PolicyConfig  # noqa: E402

VOCAB, ROWS, WIDTH, PROMPT = 150_000, 4, 512, 16


def main() -> None:
    chunk = int(sys.argv[1])
    torch.set_num_threads(1)
    _, tokenizer = make_tiny_model()
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=2048,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, logprob_chunk_tokens=chunk, prefix_sharing=False))
    ids = torch.randint(0, VOCAB, (ROWS, WIDTH), generator=torch.Generator().manual_seed(0))  # [B, T]
    mask = torch.ones_like(ids)  # [B, T]

    def step() -> None:
        out = policy.sequence_logprobs(ids, mask, first_position=PROMPT, with_entropy=True)
        out.logprobs.sum().backward()
        policy.model.zero_grad(set_to_none=True)

    small = ids[:, :64], mask[:, :64]
    out = policy.sequence_logprobs(*small, first_position=PROMPT, with_entropy=True)  # warm up the allocator
    out.logprobs.sum().backward()
    policy.model.zero_grad(set_to_none=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
    step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    full = ROWS * (WIDTH - PROMPT) * VOCAB * 4 / 2**20
    print(json.dumps({"peak_mib": after - before, "full_logits_mib": full}))


if __name__ == "__main__":
    main()
