"""Evaluation: play any player on a task set, GAIA-style, and write the records, summary and report.

* ``run``: the command (``agents/evaluate.py``, ``toolr1-eval``), ``main`` and ``cli``.
* ``args``: every knob of an evaluation (``Args``), and their redacted form for the output files.
* ``build``: the task list, the batch agent, the envs and the judge, built from the arguments.
* ``episodes``: playing the episodes (``run_episodes``, ``AgentPlayer``), one record each.
* ``outputs``: the output folder: its identity check, then ``summary.json``, the submission and the report.
* ``records``, ``metrics``, ``repeats``, ``protocol``: episode records; GAIA metrics and the submission file;
  avg@k, pass@k and 95% intervals; subsets and judges as papers report them.
* ``html_report``, ``identity``: the static report page; what makes two evaluations the same (``--resume``).
"""
