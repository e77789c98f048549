"""Benchmarks: `python -m bench.flash_sale` and `python -m bench.reports` (see BENCHMARKS.md)."""
