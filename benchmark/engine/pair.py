"""Closing a pair once its folds and its baseline's folds are done (run by the driver): Eq. 1
transferability and Venkatesan et al.'s (2016) generality per fold against the baseline of the same fold, the
mean and spread on the parent run, one point per repeat, the curves figure."""

from __future__ import annotations

import numpy as np

from bench_core.tracking import Tracker
from benchmark.engine.curves import curves_figure
from benchmark.engine.metrics import transferability
from benchmark.engine.tasks import FoldOutcome, JobEnv, PairOutcome, PairTask
from registry.progress import ProgressFactory


def close_pair(env: JobEnv, task: PairTask, deps: dict, tracker: Tracker,
               progress: ProgressFactory) -> PairOutcome:
    """Per-fold Eq. 1 and generality against the baselines of the same folds, the pair's
    mean and spread, the curves figure; the parent run ends FINISHED."""
    job = task.pair
    base = [deps[k].auc for k in task.baseline_keys]
    scratch = [deps[k].auc for k in task.scratch_keys]
    folds = []
    for i, key in enumerate(task.fold_keys):
        f, extra = deps[key], {}
        if base:
            extra["transferability"] = transferability(f.auc, base[i])
        if job.kind == "freeze" and scratch:
            extra["generality"] = f.auc / scratch[i]
        for name, value in extra.items():
            tracker.client.log_metric(f.run_id, name, value)
        folds.append(FoldOutcome(fold=f.fold, auc=f.auc, accuracy=f.accuracy, run_id=f.run_id,
                                 repeat=f.repeat, **extra))
    metrics = aggregate(folds) | shift_means([deps[k] for k in task.fold_keys])
    for r, values in repeat_means(folds).items():  # one point per repeat, step = repeat
        for name, value in values.items():
            tracker.client.log_metric(task.parent_run_id, f"repeat_{name}", value, step=r)
    for name, value in metrics.items():
        tracker.client.log_metric(task.parent_run_id, name, value)
    tracker.client.log_figure(task.parent_run_id, curves_figure(tracker, task.parent_run_id,
                                                                job.label), "curves.png")
    tracker.set_terminated(task.parent_run_id, "FINISHED")
    return PairOutcome(job=job, folds=tuple(folds), run_id=task.parent_run_id, metrics=metrics)


def repeat_means(folds: list[FoldOutcome]) -> dict[int, dict[str, float]]:
    """Mean over the folds of each repeat (only when there are several repeats)."""
    repeats = sorted({f.repeat for f in folds})
    if len(repeats) < 2:
        return {}
    out = {}
    for r in repeats:
        out[r] = {f"{'test_' if n == 'auc' else ''}{n}_mean": float(np.mean(v))
                  for n in ("auc", "transferability")
                  if (v := [getattr(f, n) for f in folds
                            if f.repeat == r and getattr(f, n) is not None])}
    return out


def shift_means(folds: list[FoldOutcome]) -> dict[str, float]:
    """Mean and (population) standard deviation over folds and repeats of each shifted
    score (``shift_<label>_<auc|accuracy>_mean`` / ``_std``), for the pair's parent run."""
    keys = sorted({k for f in folds for k in f.shift if k.endswith(("_auc", "_accuracy"))})
    out = {}
    for key in keys:
        values = [f.shift[key] for f in folds if key in f.shift]
        out |= {f"{key}_mean": float(np.mean(values)), f"{key}_std": float(np.std(values))}
    return out


def aggregate(folds: list[FoldOutcome]) -> dict[str, float]:
    """Mean and (population) standard deviation over folds of each fold metric."""
    out = {}
    for name in ("auc", "accuracy", "transferability", "generality"):
        values = [getattr(f, name) for f in folds if getattr(f, name) is not None]
        if values:
            prefix = "test_" if name in ("auc", "accuracy") else ""
            out[f"{prefix}{name}_mean"] = float(np.mean(values))
            out[f"{prefix}{name}_std"] = float(np.std(values))
    return out
