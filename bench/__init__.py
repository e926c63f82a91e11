"""Benchmarks run by ``make bench``; each prints its figures (medians of several runs)."""
