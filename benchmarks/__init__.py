"""Benchmarks that measure toolr1 against its peers; each script writes its table to RESULTS.md."""
