"""Shared plumbing for the benchmark scripts in benchmarks/ (not a benchmark itself)."""
