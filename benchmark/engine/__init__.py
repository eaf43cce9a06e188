"""Runs a plan: the job graph and what each job does (pretraining, a fold of fine-tuning, the
closing of a pair, a probe), the training loop with its on-device augmentation and metrics,
the weights cache, the MLflow runs jobs write, the executors that run the graph (``executors/``),
and ``bench probe`` outside a suite. Everything here may import torch and MLflow."""
