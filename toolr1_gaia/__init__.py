"""``toolr1-gaia``: the verifiers plugin id of ToolR1-GAIA (``vf-eval toolr1-gaia ...``).

verifiers 0.4 imports a taskset id as a top-level module (``toolr1-gaia`` -> ``toolr1_gaia``) and reads its
``__all__``; this shim re-exports :mod:`toolr1_env.integrations.verifiers_env`, where the taskset, env and
harness live (imported only here, so ``toolr1_env`` never needs verifiers).
"""

from toolr1_env.integrations.verifiers_env import (
    ToolR1ChatHarness,
    ToolR1Taskset,
    ToolR1VerifiersEnv,
    load_environment,
)

__all__ = ["ToolR1ChatHarness", "ToolR1Taskset", "ToolR1VerifiersEnv", "load_environment"]
