"""The pair table a meta-learned ranker learns from: one row per (source, target) pair, across
suites, with the measured ground truth and the pair's features (every probe's distance, every
estimator's score, the differences of the datasets' expert and statistical meta-features, their
sizes), all oriented so that higher = predicted better transfer; per-target relevance grades
and within-target standardised copies of the features. See :mod:`benchmark.analysis.ranker`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from registry.errors import BenchError

LABEL = "auc"
KEYS = ("source", "target")
RELATIVE_SUFFIX = "@rel"


def long_form(names: list[str], matrix: np.ndarray, value: str = "value") -> pd.DataFrame:
    """A project probe result (names, n x n matrix[source, target]) as rows source, target,
    ``value``; the diagonal is kept (callers drop self pairs)."""
    m = np.asarray(matrix, dtype=float)
    src, tgt = np.meshgrid(np.arange(len(names)), np.arange(len(names)), indexing="ij")
    return pd.DataFrame({"source": np.asarray(names, dtype=object)[src.ravel()],
                         "target": np.asarray(names, dtype=object)[tgt.ravel()],
                         value: m.ravel()})


def _pair_values(table, value: str) -> pd.DataFrame:
    """(names, matrix) or a DataFrame with source, target and one value column -> long form."""
    if isinstance(table, tuple):
        return long_form(*table, value=value)
    cols = [c for c in table.columns if c not in KEYS]
    if len(cols) != 1:
        raise BenchError(f"A pair table must have source, target and one value column; it has "
                         f"{list(table.columns)}.")
    out = table[list(KEYS) + cols].rename(columns={cols[0]: value})
    if out.duplicated(list(KEYS)).any():
        raise BenchError(f"The table for {value!r} names a (source, target) pair twice.")
    return out


def _dataset_differences(pairs: pd.DataFrame, prefix: str, table: pd.DataFrame,
                         signed: bool) -> pd.DataFrame:
    """Per-dataset columns of ``table`` (index: dataset name) as pair features."""
    out = {}
    src = table.reindex(pairs["source"].to_numpy())
    tgt = table.reindex(pairs["target"].to_numpy())
    for col in table.columns:
        a, b = src[col].to_numpy(), tgt[col].to_numpy()
        if pd.api.types.is_numeric_dtype(table[col]) and not pd.api.types.is_bool_dtype(table[col]):
            d = a.astype(float) - b.astype(float)
            out[f"{prefix}:{col}|abs"] = np.abs(d)
            if signed:
                out[f"{prefix}:{col}|diff"] = d
        else:
            missing = pd.isna(a) | pd.isna(b)
            out[f"{prefix}:{col}|differs"] = np.where(missing, np.nan, (a != b).astype(float))
    return pd.DataFrame(out, index=pairs.index)


def pair_table(truth: pd.DataFrame, *, distances: Mapping = {}, scores: Mapping = {},
               datasets: Mapping[str, pd.DataFrame] = {}, sizes: Mapping[str, float] | None = None,
               signed: bool = False, include_self: bool = False) -> pd.DataFrame:
    """The pair table: ``truth`` (source, target, auc[, transferability]; one row per pair, e.g.
    the mean over repeats) joined with its features (see the module docstring).

    ``distances``/``scores``: name -> (names, matrix) or DataFrame (source, target, value);
    distances become ``dist:<name>`` = -distance, scores ``est:<name>`` = score. ``datasets``:
    table name -> per-dataset DataFrame indexed by dataset name (e.g. {'expert': cards' expert
    fields, 'meta': statistical meta-features}). ``sizes``: dataset -> training images. Pairs of
    ``truth`` without a feature value get NaN; self pairs are dropped unless ``include_self``.
    """
    for col in (*KEYS, LABEL):
        if col not in truth.columns:
            raise BenchError(f"The truth table lacks column {col!r}; it has "
                             f"{list(truth.columns)}.")
    pairs = truth if include_self else truth[truth["source"] != truth["target"]]
    if pairs.duplicated(list(KEYS)).any():
        raise BenchError("The truth table names a (source, target) pair twice.",
                         "Average the repeats first (one row per pair).")
    pairs = pairs.reset_index(drop=True)
    parts = [pairs]
    for kind, tables, sign in (("dist", distances, -1.0), ("est", scores, 1.0)):
        for name, table in tables.items():
            col = f"{kind}:{name}"
            values = _pair_values(table, col)
            merged = pairs[list(KEYS)].merge(values, on=list(KEYS), how="left")
            parts.append(pd.DataFrame({col: sign * merged[col].to_numpy(dtype=float)}))
    for prefix, table in datasets.items():
        parts.append(_dataset_differences(pairs, prefix, table, signed))
    if sizes is not None:
        s = pairs["source"].map(sizes).astype(float).to_numpy()
        t = pairs["target"].map(sizes).astype(float).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((s > 0) & (t > 0), np.log(s / t), np.nan)
        parts.append(pd.DataFrame({"size:source_images": s, "size:target_images": t,
                                   "size:log_ratio": ratio}))
    return pd.concat(parts, axis=1)


def feature_columns(pairs: pd.DataFrame) -> list[str]:
    """The feature columns of a pair table: those with ':' in their name."""
    return [c for c in pairs.columns if ":" in str(c)]


def add_relative_features(pairs: pd.DataFrame, features: list[str] | None = None) -> pd.DataFrame:
    """``pairs`` with, for each feature f, ``f@rel``: f standardised within each target's
    candidates ((f - mean) / std over that target's non-NaN values; 0 where the std is 0, NaN
    stays NaN). Reads only features, never labels, and each target only its own rows.

    Computed with numpy on a fresh C-ordered copy of each target's rows, so the result is
    bitwise the same whatever the frame's memory layout (pandas' grouped reductions are not)."""
    features = feature_columns(pairs) if features is None else features
    values = np.ascontiguousarray(pairs[features].to_numpy(dtype=float))
    out = np.full(values.shape, np.nan)
    codes, _ = pd.factorize(pairs["target"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN stays NaN
        for g in range(codes.max() + 1 if len(codes) else 0):
            idx = np.flatnonzero(codes == g)
            sub = values[idx]
            mean, std = np.nanmean(sub, axis=0), np.nanstd(sub, axis=0)
            z = (sub - mean) / np.where(std > 0, std, 1.0)
            out[idx] = np.where(std > 0, z, np.where(np.isnan(sub), np.nan, 0.0))
    rel = pd.DataFrame(out, index=pairs.index,
                       columns=[f"{c}{RELATIVE_SUFFIX}" for c in features])
    return pd.concat([pairs, rel], axis=1)


def relevance(pairs: pd.DataFrame, label: str = LABEL, scheme: str = "rank",
              levels: int = 5) -> np.ndarray:
    """Integer relevance per row, computed within each target from its own labels only.

    ``rank``: the number of candidates of the same target with a strictly lower label (worst =
    0, ties share a grade). ``quantile``: that rank binned into ``levels`` equal bins
    (floor(levels * rank / n)). NaN labels are not allowed (drop those pairs first).
    """
    if pairs[label].isna().any():
        raise BenchError(f"Relevance needs a {label!r} for every training pair.")
    below = pairs.groupby("target", sort=False)[label].rank(method="min").to_numpy() - 1
    if scheme == "rank":
        return below.astype(int)
    if scheme == "quantile":
        n = pairs.groupby("target", sort=False)[label].transform("size").to_numpy()
        return np.minimum(np.floor(levels * below / n), levels - 1).astype(int)
    raise ValueError(f"Unknown relevance scheme {scheme!r}.")


def within_target_z(pairs: pd.DataFrame, label: str) -> np.ndarray:
    """The label standardised within each target (0 where a target's labels are constant)."""
    g = pairs.groupby("target", sort=False)[label]
    sd = g.transform("std", ddof=0)
    return ((pairs[label] - g.transform("mean")) / sd.where(sd > 0)).fillna(0.0).to_numpy()
