"""Training presets (agents/learner/presets.py): named defaults that explicit flags still override."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from agents.learner.model_loading import native_bf16
from agents.learner.presets import PRESETS
from agents.learner.train import Args, parse_args


def test_every_preset_sets_only_existing_fields_with_their_types():
    fields = {f.name: f for f in dataclasses.fields(Args)}
    for name, values in PRESETS.items():
        for key, value in values.items():
            assert key in fields, (name, key)
            value = value() if callable(value) else value  # a setting that depends on the machine
            assert isinstance(value, type(getattr(Args(), key))), (name, key, value)


def test_multistep_preset_sets_defaults_and_explicit_flags_win():
    args = parse_args(["--preset", "multistep"])
    assert (args.preset, args.tasks, args.max_turns, args.eval_tasks, args.demonstrations) == \
        ("multistep", "train-easy", 4, "level1-eval", "compact")
    assert args.max_observation_chars == 800
    # Supervised passes over the demonstrations first, and an evaluation after them (docs/training_result.md).
    assert (args.demo_warmup_epochs, args.eval_at_start) == (6, True)
    overridden = parse_args(["--iterations", "3", "--preset", "multistep", "--max_turns", "2"])
    assert (overridden.iterations, overridden.max_turns, overridden.tasks) == (3, 2, "train-easy")
    plain = parse_args([])  # the command line's default is the main recipe
    assert (plain.preset, plain.max_turns, plain.tasks, plain.rl_pool_size, plain.rl_kinds) == \
        ("multistep", 4, "train-easy", 192, "new")
    assert plain.select_tasks == ""  # a scoring takes about a minute: the 20-minute command ends on RL's last adapter
    single = parse_args(["--preset", "single-step"])
    assert (single.preset, single.max_turns, single.tasks, single.demo_warmup_epochs) == ("single-step", 1, "warmup", 0)
    assert parse_args(["--preset", "warmup"]).max_turns == 1  # the single-step run's historical name


def test_an_unknown_preset_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--preset", "nope"])
    assert "invalid choice" in capsys.readouterr().err


def _machine(monkeypatch, *, cuda: tuple[int, int] | None = None, avx512_bf16: bool = False,
             amx: bool = False) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda is not None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0 if cuda is None else 1)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


@pytest.mark.parametrize(("machine", "native"), [
    ({}, False),  # an AVX2-only CPU: bfloat16 is emulated, autocast would slow the run down
    ({"avx512_bf16": True}, True),
    ({"amx": True}, True),
    ({"cuda": (8, 0)}, True),  # A100
    ({"cuda": (9, 0)}, True),  # H100
    ({"cuda": (7, 5), "avx512_bf16": True}, False),  # a T4: the GPU runs the model, not the CPU
])
def test_native_bf16_reads_the_machine(monkeypatch, machine, native):
    _machine(monkeypatch, **machine)
    assert native_bf16() is native


def test_the_main_recipe_autocasts_in_bf16_only_where_bf16_is_native_and_flags_still_win(monkeypatch):
    _machine(monkeypatch)  # AVX2 only
    assert parse_args([]).bf16 is False
    assert parse_args(["--bf16"]).bf16 is True
    _machine(monkeypatch, avx512_bf16=True)
    assert parse_args(["--preset", "multistep"]).bf16 is True
    assert parse_args(["--no_bf16"]).bf16 is False
    assert parse_args(["--preset", "single-step"]).bf16 is False  # the Args default, whatever the machine
