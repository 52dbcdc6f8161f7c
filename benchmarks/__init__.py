"""Throughput and latency benchmarks, measured against the targets the design sets.

Run them with `python -m benchmarks` (or `make bench`); see `benchmarks/README.md`. They are not
tests: tests never assert wall-clock speed, benchmarks report it.
"""
