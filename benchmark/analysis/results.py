"""The results of a suite read back from its MLflow runs: one row per source -> target pair
(the latest finished run of each), one row per fold and repeat, the transfer results per
repeat, probe matrices as scores, and each fine-tuned model's scores on the shifted sets."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bench_core.tracking import Tracker
from registry.errors import BenchError

COLUMNS = ["target", "source", "kind", "k", "folds", "repeats", "auc_mean", "auc_std",
           "transferability_mean", "transferability_std", "generality_mean", "run_id"]
FOLD_COLUMNS = ["target", "source", "kind", "k", "fold", "repeat", "auc", "accuracy",
                "transferability", "shift_metrics", "config_hash"]


def results_table(tracker: Tracker, suite: str, hashes: set[str] | None = None) -> pd.DataFrame:
    """One row per source -> target pair: the latest finished run (only ``hashes`` if given)."""
    return results_tables(tracker, suite, hashes)[0]


def results_tables(tracker: Tracker, suite: str, hashes: set[str] | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pair table and the fold table (one row per fold and repeat of those pairs)."""
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        f"tags.level = 'pair' and tags.suite = '{suite}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=5000)
    rows, seen, fold_rows = [], set(), []
    for r in runs:
        t, m = r.data.tags, r.data.metrics
        if hashes is not None and t.get("config_hash") not in hashes:
            continue
        key = (t["target"], t["source"], t["kind"], t.get("k"))
        if key in seen:
            continue
        seen.add(key)
        kids = _fold_rows(tracker, r.info.run_id, t)
        fold_rows += kids
        repeats = len({k["repeat"] for k in kids}) or 1
        rows.append({"target": t["target"], "source": t["source"], "kind": t["kind"],
                     "k": int(t["k"]) if t.get("k") else None,
                     "folds": len({k["fold"] for k in kids}), "repeats": repeats,
                     "auc_mean": m.get("test_auc_mean"), "auc_std": m.get("test_auc_std"),
                     "transferability_mean": m.get("transferability_mean"),
                     "transferability_std": m.get("transferability_std"),
                     "generality_mean": m.get("generality_mean"), "run_id": r.info.run_id})
    if not rows:
        raise BenchError(f"No finished results for suite '{suite}' in {tracker.uri}.",
                         f"Run `bench run --suite {suite}` first (or point MLFLOW_TRACKING_URI "
                         "at the store that holds them).")
    table = pd.DataFrame(rows, columns=COLUMNS)
    order = {"scratch": 0, "transfer": 1, "freeze": 2}
    table["_o"] = table["kind"].map(order)
    table = table.sort_values(["target", "_o", "k", "auc_mean"],
                              ascending=[True, True, True, False],
                              na_position="first").drop(columns="_o").reset_index(drop=True)
    return table, pd.DataFrame(fold_rows, columns=FOLD_COLUMNS)


def _fold_rows(tracker: Tracker, parent_id: str, tags: dict[str, str]) -> list[dict]:
    kids = tracker.client.search_runs([tracker.experiment_id],
                                      f"tags.mlflow.parentRunId = '{parent_id}' and "
                                      "attributes.status = 'FINISHED'", max_results=5000)
    return [{"target": tags["target"], "source": tags["source"], "kind": tags["kind"],
             "k": int(tags["k"]) if tags.get("k") else None, "fold": int(c.data.tags["fold"]),
             "repeat": int(c.data.tags.get("repeat", 0)), "auc": c.data.metrics.get("test_auc"),
             "accuracy": c.data.metrics.get("test_accuracy"),
             "transferability": c.data.metrics.get("transferability"),
             "shift_metrics": {k: v for k, v in c.data.metrics.items() if k.startswith("shift_")},
             "config_hash": tags.get("config_hash")}
            for c in kids]



def repeat_results(folds: pd.DataFrame) -> pd.DataFrame:
    """Transfer results per (source, target, repeat): the mean over that repeat's folds."""
    transfer = folds[folds["kind"] == "transfer"]
    if transfer.empty:
        return pd.DataFrame(columns=["source", "target", "repeat", "auc", "transferability"])
    return transfer.groupby(["source", "target", "repeat"], as_index=False)[
        ["auc", "transferability"]].mean()


def probe_scores(probes: dict[str, tuple[list[str], np.ndarray]]) -> dict[str, pd.DataFrame]:
    """Each probe's matrix as scores (source, target, score = -distance: higher is better)."""
    out = {}
    for method, (names, matrix) in probes.items():
        out[method] = pd.DataFrame([{"source": s, "target": t, "score": -float(matrix[i, j])}
                                    for i, s in enumerate(names) for j, t in enumerate(names)
                                    if i != j])
    return out



def shift_models(folds: pd.DataFrame) -> pd.DataFrame:
    """One row per fine-tuned model (fold run, freezing excluded) and shifted set: its
    original and shifted accuracy and AUC, and the images behind them (orig_n, shift_n; NaN
    for runs logged before they were)."""
    key = re.compile(r"^shift_(.+)_(accuracy|auc|n_orig|n)$")
    rows = []
    for _, f in folds[folds["kind"] != "freeze"].iterrows():
        shifted = f["shift_metrics"] or {}
        labels = {m.group(1) for k in shifted if (m := key.match(k))}
        for label in sorted(labels):
            rows.append({"target": f["target"], "shift": label, "source": f["source"],
                         "fold": f["fold"], "repeat": f["repeat"],
                         "orig_accuracy": f["accuracy"], "orig_auc": f["auc"],
                         "shift_accuracy": shifted.get(f"shift_{label}_accuracy"),
                         "shift_auc": shifted.get(f"shift_{label}_auc"),
                         "orig_n": shifted.get(f"shift_{label}_n_orig", np.nan),
                         "shift_n": shifted.get(f"shift_{label}_n", np.nan)})
    if not rows:
        return pd.DataFrame(rows)
    # a canonical order: the seeded bootstrap of the analysis resamples by position, and the
    # tracking store returns runs in no fixed order (two stores of the same results disagreed)
    return pd.DataFrame(rows).sort_values(["target", "shift", "source", "repeat", "fold"],
                                          ignore_index=True)

