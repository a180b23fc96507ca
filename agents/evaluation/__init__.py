"""Evaluation: play any player on a task set, GAIA-style, and write the records, summary and report.

``run`` (the evaluation run; ``agents/evaluate.py``), ``report`` (episode records, metrics, submission
file and the HTML report).
"""
