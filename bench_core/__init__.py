"""What the benchmark engine and the probes share: datasets held on the device, model building
and weights, per-batch preparation, config hashing, devices and MLflow tracking.

Dependencies point one way: ``registry`` <- ``bench_core`` <- ``probes`` and ``benchmark`` (the
engine) <- the CLI. Nothing here imports ``benchmark`` or ``probes``.
"""
