"""Retrieval benchmarks: a registry of benchmarks, the runner, its JSON result and report."""
