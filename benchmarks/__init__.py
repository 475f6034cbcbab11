"""Throughput, memory and extraction benchmarks for snapcrawl (see benchmarks/README.md)."""
