"""Benchmark harness: the contestants IntelliGen is compared against, and the report."""
