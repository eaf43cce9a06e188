"""What every analysis reads, from either source of transfer results: a suite's MLflow store or a
transfer table (:mod:`registry.transfer_table`: exported from a store, a colleague's, a paper's).

:class:`AnalysisInputs` holds the pair table the report prints, the rows per fold and repeat,
each method's per-pair scores (higher = better), the candidates' sizes (the static ranking) and
the datasets' expert and statistical meta-features (the learned ranker). The truth column of
the rows is called ``auc`` whatever the table's metric (``metric`` names it: a model-zoo table's
``auc`` column holds fine-tuned accuracy); Eq. 1 transferability is computed against the scratch
baseline of the same target, repeat and fold where the table has one (model-zoo tables have
none, and no transferability).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.analysis.pair_features import LABEL, pair_table
from benchmark.analysis.results import COLUMNS, FOLD_COLUMNS, repeat_results
from registry.card import ExpertFeatures
from registry.transfer_table import META_FIELDS, SCRATCH, TransferTable


@dataclass(frozen=True, kw_only=True)
class AnalysisInputs:
    """The inputs of the report, ``bench score``, ``bench recommend`` and the learned ranker."""

    label: str                  # the suite's or the result set's name
    pairs: pd.DataFrame         # one row per candidate -> target pair (results.md's columns)
    folds: pd.DataFrame         # one row per fold and repeat (FOLD_COLUMNS)
    scores: dict[str, pd.DataFrame]  # method -> source, target, score (higher = better)
    sizes: dict[str, float]     # candidate -> images (datasets) or parameters (models)
    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)  # 'expert', 'meta'
    metric: str = "auc"
    repeats_are: str = "independent repeats"
    protocol_id: str | None = None
    methods: dict[str, dict] = field(default_factory=dict)  # method -> its description

    def results(self) -> pd.DataFrame:
        """Transfer results per repeat (source, target, repeat, auc, transferability)."""
        return repeat_results(self.folds)


# --- from a transfer table ----------------------------------------------------------------------


def _fold_rows(table: TransferTable) -> pd.DataFrame:
    """The table's rows as the store's fold rows. When its repeats are the folds of one split
    (``repeats_are``), each fold counts as a repeat: the truth is still the mean over all of
    them, and the noise ceiling measures the folds' agreement (the report says so)."""
    rows = table.results.copy()
    rows["fold"] = rows["fold"].fillna(0).astype(int)
    rows["repeat"] = rows["repeat"].astype(int)
    if table.meta.get("repeats_are") == "folds of one split":
        rows["repeat"] = rows["repeat"] * (rows["fold"].max() + 1) + rows["fold"]
        rows["fold"] = 0
    scratch_rows = rows[rows["candidate"] == SCRATCH]
    scratch = scratch_rows.set_index(["target", "repeat", "fold"])["value"]
    per_target = scratch_rows.groupby("target")["value"].mean()
    key = pd.MultiIndex.from_frame(rows[["target", "repeat", "fold"]])
    base = pd.Series(scratch.reindex(key).to_numpy(), index=rows.index)
    base = base.fillna(rows["target"].map(per_target))
    with np.errstate(invalid="ignore", divide="ignore"):
        transfer = (rows["value"] - base) / base * 100.0
    kind = np.where(rows["candidate"] == SCRATCH, "scratch", "transfer")
    return pd.DataFrame({"target": rows["target"], "source": rows["candidate"], "kind": kind,
                         "k": None, "fold": rows["fold"], "repeat": rows["repeat"],
                         "auc": rows["value"].astype(float), "accuracy": np.nan,
                         "transferability": np.where(kind == "transfer", transfer, np.nan),
                         "shift_metrics": [{}] * len(rows),
                         "config_hash": rows["config_hash"]}, columns=FOLD_COLUMNS)


def pair_rows(folds: pd.DataFrame) -> pd.DataFrame:
    """results.md's table from fold rows: per (target, source, kind) the folds, repeats, mean
    and std of the metric and of transferability; scratch first, then by mean, best first."""
    g = folds.groupby(["target", "source", "kind"], sort=False)
    out = pd.DataFrame({
        "folds": g["fold"].nunique(), "repeats": g["repeat"].nunique(),
        "auc_mean": g["auc"].mean(), "auc_std": g["auc"].std(ddof=1),
        "transferability_mean": g["transferability"].mean(),
        "transferability_std": g["transferability"].std(ddof=1)}).reset_index()
    out = out.assign(k=None, generality_mean=np.nan, run_id=None)
    out["_o"] = out["kind"].map({"scratch": 0, "transfer": 1})
    out = out.sort_values(["target", "_o", "auc_mean"], ascending=[True, True, False])
    return out.drop(columns="_o")[COLUMNS].reset_index(drop=True)


def _dataset_tables(datasets: pd.DataFrame) -> dict[str, pd.DataFrame]:
    frame = datasets.set_index("name") if len(datasets) else pd.DataFrame()
    expert = {f: frame[f"expert_{f}"] for f in ExpertFeatures.FIELDS if f"expert_{f}" in frame}
    meta = {f: frame[f"meta_{f}"].astype(float) for f in META_FIELDS if f"meta_{f}" in frame}
    return {"expert": pd.DataFrame(expert, index=frame.index),
            "meta": pd.DataFrame(meta, index=frame.index, dtype=float)}


def table_sizes(table: TransferTable) -> dict[str, float]:
    """Each candidate's size for the static ranking: its images (a dataset) or parameters (a
    model), from the result rows, else from the datasets resource."""
    rows = table.results.drop_duplicates("candidate").set_index("candidate")
    sizes = {}
    for cand, r in rows.iterrows():
        value = r["candidate_params"] if r["candidate_kind"] == "model" else r["candidate_images"]
        if pd.notna(value):
            sizes[cand] = float(value)
    if len(table.datasets):
        images = table.datasets.set_index("name")["images"].dropna()
        sizes = {**{k: float(v) for k, v in images.items()}, **sizes}
    return sizes


def inputs_from_table(table: TransferTable, label: str,
                      extra_sizes: Mapping[str, float] | None = None) -> AnalysisInputs:
    """The analysis inputs of a transfer table. ``extra_sizes``: sizes of candidates the table
    does not give (the registry's cards, where names match); the table's own win."""
    folds = _fold_rows(table)
    scores = {m: g.rename(columns={"candidate": "source"})[["source", "target", "score"]]
              .reset_index(drop=True) for m, g in table.scores.groupby("method", sort=True)}
    meta = table.meta
    return AnalysisInputs(label=label, pairs=pair_rows(folds), folds=folds, scores=scores,
                          sizes={**dict(extra_sizes or {}), **table_sizes(table)},
                          datasets=_dataset_tables(table.datasets), metric=table.metric,
                          repeats_are=meta.get("repeats_are", "independent repeats"),
                          protocol_id=meta.get("protocol_id"),
                          methods=dict(meta.get("methods") or {}))


def learning_pairs(inputs: AnalysisInputs) -> pd.DataFrame:
    """The pair table the learned ranker learns from (``benchmark.analysis.pair_features``):
    per pair the mean metric over repeats, every method's score as a feature ``est:<method>``,
    the datasets' meta-feature differences, the sizes; ``suite`` = the inputs' label and
    ``protocol`` their protocol id, so that pairs of different tables are told apart."""
    results = inputs.results()
    truth = results.groupby(["source", "target"], as_index=False)[["auc", "transferability"]] \
        .mean().rename(columns={"auc": LABEL})
    pairs = pair_table(truth, scores=inputs.scores, datasets=inputs.datasets,
                       sizes=inputs.sizes)
    return pairs.assign(suite=inputs.label, protocol=inputs.protocol_id)
