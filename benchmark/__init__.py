"""transfer-bench: the benchmark engine and the `bench` command line."""

__version__ = "0.1.0"
