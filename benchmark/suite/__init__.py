"""What a suite is and what it plans: the suite YAMLs (``builtin/``), their typed models
(settings, sources, targets, shifts, probes), overrides and selections, the splits of the
protocol, every check that can run before training, and the plan of jobs with their config
hashes. Nothing here trains, imports torch or opens MLflow."""
