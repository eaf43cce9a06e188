"""What a suite is and what it plans: the suite YAMLs (``builtin/``), their typed models
(settings, sources, targets, shifts, probes), overrides and selections, the splits of the
protocol, every check that can run before training (the probes' too), the source models the
probes score, and the plan of jobs with their config hashes. Nothing here trains or imports
torch; MLflow is opened only to resolve a ``models:/`` name, when one is asked for."""
