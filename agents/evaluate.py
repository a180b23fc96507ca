"""Script shim: ``python agents/evaluate.py ...`` runs the evaluation command (``agents.evaluation.run``).

The script's own folder is replaced by the repository root on ``sys.path``, so ``agents/``'s
subpackages can never shadow installed packages of the same name (``trl``, say).
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from agents.evaluation.run import cli

    sys.exit(cli())
