"""Script shim: ``python agents/train_trl.py ...`` trains with TRL's GRPOTrainer and our rollout (``agents.trl.train``).

The script's own folder is replaced by the repository root on ``sys.path``, so ``agents/trl`` can never shadow
the installed ``trl`` package.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from agents.trl.train import cli

    sys.exit(cli())
