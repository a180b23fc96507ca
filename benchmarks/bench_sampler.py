"""Sampling speed: the trainer's sampler (``Policy.sample``) against plain batched ``generate``, same batch.

    python benchmarks/bench_sampler.py [--repeats 3] [--max_new_tokens 64]

The batch is the trainer's: ``groups`` task prompts of the ``warmup`` split (compact style, the response
prefix appended) times ``group_size`` copies, left-padded. Every side samples at the same temperature with
no top-k/top-p and stops only at EOS or the token budget (the trainer's code-end stop is off here, so both
sides may generate the same number of tokens; one extra row shows it on). Tokens/s counts the tokens each
row generated up to and including its EOS, over wall time. Sides run interleaved, ``repeats`` times each; the
machine's other load moves the figures, so the table gives the median and the best run, and tokens per
CPU-second of this process (with ``--threads 1`` nearly immune to other processes' load: the fairer figure
on a shared machine).

Ablations of our sampler show where the time of the old loop went: the unmerged adapter, ``multinomial``
token picking, and compacting the cache on every finished row (and the stop checks' own share of a run).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import agents.learner.policy as policy_module  # noqa: E402
from agents.cli import arg, parse  # noqa: E402
from agents.learner import decoding, sampling  # noqa: E402
from agents.learner.model_loading import load_model_and_tokenizer  # noqa: E402
from agents.learner.policy import Policy, PolicyConfig  # noqa: E402
from benchmarks.results_file import markdown_table, write_section  # noqa: E402
from toolr1_env.env import resolve_tasks  # noqa: E402
from toolr1_env.prompts import render_compact_prompt  # noqa: E402


@dataclass
class Args:
    """Tokens/s of the trainer's sampler vs plain batched generate on the same batch."""

    model: str = arg("smollm2-135m", "bundled alias, local folder or cached hub id")
    groups: int = arg(4, "distinct task prompts (GRPO groups)")
    group_size: int = arg(8, "copies of each prompt (rows = groups x group_size)")
    max_new_tokens: int = arg(64, "token budget per row")
    temperature: float = arg(1.0, "sampling temperature of every side")
    lora_r: int = arg(16, "LoRA rank of the adapter (B initialised non-zero so it changes the output)")
    repeats: int = arg(3, "timed runs per side (interleaved)")
    response_prefix: str = arg("```py\n", "text appended to every prompt (the trainer's default)")
    ablations: bool = arg(True, "also time the sampler with each speed-up undone")
    bf16: bool = arg(False, "sample under bf16 autocast like the main recipe (then the ablations are: the frozen "
                           "weights cast on every matmul, and fp32)")
    threads: int = arg(0, "torch threads (0 = torch's default); 1 keeps a shared, loaded machine from thrashing")
    write_results: bool = arg(True, "write the table to benchmarks/RESULTS.md")


def old_sample_next(logits: torch.Tensor, temperature: float, top_p: float,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The former token picker (log_softmax over the vocabulary, then multinomial), for the ablation."""
    scaled = logits.float() / temperature if temperature > 0 else logits.float()  # [B, V]
    logp = torch.log_softmax(scaled, dim=-1)  # [B, V]
    tokens = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)  # [B]
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)  # [B], [B]


@contextmanager
def patched(module: Any, name: str, value: Any) -> Any:
    """Temporarily replace ``module.name``."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def build(args: Args) -> tuple[Policy, Policy, list[list[int]]]:
    """The policy with a LoRA adapter (B non-zero), a bare copy of the base model, and the batch's prompt ids."""
    model, tokenizer = load_model_and_tokenizer(args.model)
    torch.manual_seed(0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=args.lora_r, temperature=args.temperature,
                                                   max_new_tokens=args.max_new_tokens, stop_at_code_end=False,
                                                   bf16=args.bf16))
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(1))
    plain_model, _ = load_model_and_tokenizer(args.model)  # no PEFT layers injected: the plain generate side
    plain = Policy(plain_model, tokenizer, PolicyConfig(lora_r=0, temperature=args.temperature,
                                                        max_new_tokens=args.max_new_tokens, stop_at_code_end=False,
                                                        bf16=args.bf16))
    tasks = resolve_tasks("warmup")
    tools = {fn.__name__: fn for fn in tasks.tools}
    prefix = policy.tokenize(args.response_prefix) if args.response_prefix else []
    prompts = []
    for seed in range(args.groups):
        task = tasks.pick(seed)
        ids = policy.encode_prompt([{"role": "user", "content": render_compact_prompt(task.question, [], tools)}])
        prompts += [ids + prefix] * args.group_size
    return policy, plain, prompts


def count_until_eos(rows: list[list[int]], eos: frozenset[int]) -> int:
    """Generated tokens per row up to and including the first EOS, summed."""
    total = 0
    for row in rows:
        total += next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
    return total


def generate_side(policy: Policy, prompts: list[list[int]], args: Args) -> Callable[[], int]:
    """Plain batched ``generate`` of ``policy.model`` (the bare base model, or the PEFT model: unmerged LoRA)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), policy.pad_token_id, dtype=torch.long)  # [B, L]
    mask = torch.zeros_like(ids)  # [B, L]
    for i, p in enumerate(prompts):
        ids[i, width - len(p):], mask[i, width - len(p):] = torch.tensor(p), 1

    def run() -> int:
        policy.model.eval()
        with torch.no_grad():
            out = policy.model.generate(input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, top_p=1.0,
                                        temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                                        pad_token_id=policy.pad_token_id, eos_token_id=sorted(policy.eos_token_ids))
        return count_until_eos(out[:, width:].tolist(), policy.eos_token_ids)

    return run


def ours_side(policy: Policy, prompts: list[list[int]], args: Args, *, merged: bool = True, old_picker: bool = False,
              compact_always: bool = False, stop_at_code_end: bool = False, share: bool = True,
              cast_once: bool = True, bf16: bool | None = None) -> Callable[[], int]:
    """``Policy.sample`` on the batch, optionally with one speed-up undone (``bf16``: override the autocast)."""
    def run() -> int:
        policy.config.merge_for_sampling, policy.config.stop_at_code_end = merged, stop_at_code_end
        policy.config.prefix_sharing = share
        configured = policy.config.bf16
        policy.config.bf16 = configured if bf16 is None else bf16
        with patched(decoding, "sample_next", old_sample_next if old_picker else sampling.sample_next), \
                patched(decoding, "COMPACT_FRACTION", 0.0 if compact_always else decoding.COMPACT_FRACTION), \
                patched(policy_module, "autocast_weights", decoding.autocast_weights if cast_once else _no_cast):
            gens = policy.sample(prompts, prefix_text=args.response_prefix)
        policy.config.merge_for_sampling, policy.config.stop_at_code_end = True, False
        policy.config.prefix_sharing, policy.config.bf16 = True, configured
        return sum(len(g.token_ids) for g in gens)

    return run


@contextmanager
def _no_cast(model: Any, device: torch.device) -> Any:
    """Stand-in for :func:`agents.learner.decoding.autocast_weights` that casts nothing (autocast casts per matmul)."""
    yield 0


def stop_check_share(policy: Policy, prompts: list[list[int]], args: Args) -> float:
    """Share of one run of our sampler spent in the stop checks (``StopMatcher.feed``), code-end stop on."""
    spent = [0.0]
    feed = sampling.StopMatcher.feed

    def timed_feed(self: sampling.StopMatcher, row: int, piece: str) -> bool:
        start = time.perf_counter()
        try:
            return feed(self, row, piece)
        finally:
            spent[0] += time.perf_counter() - start

    run = ours_side(policy, prompts, args, stop_at_code_end=True)
    with patched(sampling.StopMatcher, "feed", timed_feed):
        start = time.perf_counter()
        run()
        total = time.perf_counter() - start
    return spent[0] / total


def main(args: Args) -> None:
    """Run every side, print the table and record it."""
    if args.threads:
        torch.set_num_threads(args.threads)
    policy, plain, prompts = build(args)
    same = "same prompts, temperature, no top-k/top-p, EOS or budget stop"
    adapter = "unmerged adapter, weights cast once" if args.bf16 else "merged adapter"
    sides: list[tuple[str, str, Callable[[], int]]] = [
        ("generate, base model", f"HF batched generate on the bare base model (no adapter); prefills all "
         f"{len(prompts)} rows; {same}", generate_side(plain, prompts, args)),
        ("generate, unmerged LoRA", "HF generate through the PEFT adapter; " + same,
         generate_side(policy, prompts, args)),
        ("ours (trainer sampler), LoRA", f"Policy.sample: {adapter}, inverse-CDF picking, {args.groups} "
         "prompts prefilled once, lazy compaction; " + same, ours_side(policy, prompts, args)),
        ("ours, base model", "Policy.sample on the bare base model (the same model as generate's first row)",
         ours_side(plain, prompts, args)),
    ]
    if args.ablations and args.bf16:
        sides += [
            ("ours, weights cast on every matmul", "ablation: bf16 autocast casts every frozen weight on every "
             "matmul (no autocast_weights)", ours_side(policy, prompts, args, cast_once=False)),
            ("ours, fp32", "the same sampler without autocast (fp32 arithmetic, merged adapter)",
             ours_side(policy, prompts, args, bf16=False)),
        ]
    elif args.ablations:
        sides += [
            ("ours, no prefix sharing", f"ablation: all {len(prompts)} rows prefilled and decoded to the end, like "
             "generate (the model's own cache, no row dropping)", ours_side(policy, prompts, args, share=False)),
            ("ours, adapter unmerged", "ablation: PEFT's LoRA layers run on every token",
             ours_side(policy, prompts, args, merged=False)),
            ("ours, multinomial picking", "ablation: log_softmax + multinomial, as before",
             ours_side(policy, prompts, args, old_picker=True)),
            ("ours, compact on every finished row", "ablation: copy the cache whenever a row finishes, as before",
             ours_side(policy, prompts, args, compact_always=True)),
            ("ours as before (all three undone)", "the former loop: unmerged, multinomial, eager compaction",
             ours_side(policy, prompts, args, merged=False, old_picker=True, compact_always=True)),
            ("ours, trainer's stop rule on", "also stops after the first code block (fewer tokens per row)",
             ours_side(policy, prompts, args, stop_at_code_end=True)),
        ]
    load_before = os.getloadavg()
    for name, _, run in sides:  # warm up every path once (allocator, first-call costs)
        torch.manual_seed(0)
        run()
        print(f"[bench_sampler] warmed up: {name}", flush=True)
    rates: dict[str, list[float]] = {name: [] for name, _, _ in sides}
    cpu_rates: dict[str, list[float]] = {name: [] for name, _, _ in sides}
    tokens: dict[str, list[int]] = {name: [] for name, _, _ in sides}
    for repeat in range(args.repeats):
        for name, _, run in sides:
            torch.manual_seed(repeat)
            start, cpu_start = time.perf_counter(), time.process_time()
            n = run()
            rates[name].append(n / (time.perf_counter() - start))
            cpu_rates[name].append(n / (time.process_time() - cpu_start))
            tokens[name].append(n)
            print(f"[bench_sampler] run {repeat + 1}/{args.repeats} {name}: {n} tokens, {rates[name][-1]:.0f} "
                  f"tokens/s wall, {cpu_rates[name][-1]:.0f} per CPU second", flush=True)
    share = stop_check_share(policy, prompts, args)
    load = os.getloadavg()
    reference = statistics.median(rates["generate, base model"])
    cpu_reference = statistics.median(cpu_rates["generate, base model"])
    rows = []
    for name, differs, _ in sides:
        median, cpu_median = statistics.median(rates[name]), statistics.median(cpu_rates[name])
        rows.append([name, f"{median:.0f}", f"{max(rates[name]):.0f}", f"{median / reference:.2f}",
                     f"{cpu_median:.0f}", f"{cpu_median / cpu_reference:.2f}",
                     f"{statistics.mean(tokens[name]):.0f}", differs])
    table = markdown_table(["side", "tokens/s wall (median)", "wall (best)", "wall ratio to generate",
                            "tokens per CPU-s (median)", "CPU ratio to generate", "tokens per run", "what differs"],
                           rows)
    torch_threads = torch.get_num_threads()
    body = (f"{len(prompts)} rows ({args.groups} warm-up task prompts x {args.group_size}), up to "
            f"{args.max_new_tokens} new tokens, {args.model} {'under bf16 autocast' if args.bf16 else 'fp32'} with a "
            f"rank-{args.lora_r} LoRA adapter, "
            f"{args.repeats} interleaved runs per side, {torch_threads} torch threads; load average before the "
            f"runs {load_before[0]:.1f}, after {load[0]:.1f} (other work on the machine slows every side).\n\n"
            f"{table}\n\n"
            f"Stop checks (`StopMatcher.feed`, code-end rule on) took {share:.2%} of a run of our sampler.\n")
    print(body)
    if args.write_results:
        write_section("Sampler speed vs generate, bf16 autocast (bench_sampler.py --bf16)" if args.bf16 else
                      "Sampler speed vs generate (bench_sampler.py)", body)


if __name__ == "__main__":
    main(parse(Args))
