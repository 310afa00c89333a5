"""pyengine benchmarks: ``python -m bench [--quick] [SUITE ...]`` times pyengine side by
side with peers on the same data, prints ratio tables and regenerates BENCHMARKS.md."""
