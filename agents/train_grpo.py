"""Script shim: ``python agents/train_grpo.py ...`` runs the training command (``agents.learner.train``).

The script's own folder is replaced by the repository root on ``sys.path``, so ``agents/``'s
subpackages can never shadow installed packages of the same name (``trl``, say).
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from agents.learner.train import cli

    sys.exit(cli())
