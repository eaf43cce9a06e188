"""Transfer tables from the files other tools and papers write (see docs/sharing.md):

* ``package``: a transfer table folder (``datapackage.json`` + Parquet), as ``bench results
  export`` writes it;
* ``plain``: a CSV any tool can write, ``candidate,target,repeat[,fold],<metric>`` (the metric
  column named after the metric: ``auc``, ``accuracy``, ...), plus optional score CSVs
  (``candidate,target,<method>...``, higher = better) and a candidate attribute CSV
  (``candidate[,kind][,images|size][,classes][,params]``);
* ``cats-scans``: the per-fold file of van den Brandt et al. (2021)'s repository
  (``results/aucs_scores_distances_experts.csv`` in vcheplygina/cats-scans): ``source, target,
  fold_1..fold_5`` AUCs, ``mean, std``, ``score_k`` (Eq. 1 per fold), ``distance_k`` (Task2Vec)
  and ``expert_distance``; a row with source == target is the target trained from scratch. The
  repository carries no licence: the file a user downloaded is read, never shipped;
* ``model-zoo``: the layout of the transferability literature, one row per pretrained model,
  ``model[,params][,imagenet_top1]`` then one column per target dataset holding the fine-tuned
  metric (accuracy by default); no scratch baseline: candidates are ranked by the metric alone.

Every reader refuses a bad file with its name, row (as a spreadsheet counts them: the header is
line 1) and column, and returns a validated :class:`~registry.transfer_table.TransferTable`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from registry.transfer_table import (DESCRIPTOR, SCRATCH, TransferTable, TransferTableError,
                                     protocol_id, read_table, validate)

FORMATS = ("auto", "package", "plain", "cats-scans", "model-zoo")
CATS_SCANS_CITATION = ("van den Brandt, F. A. J. et al. (2021). Cats, not CAT scans: a study of "
                       "dataset similarity in transfer learning for 2D medical image "
                       "classification. arXiv:2107.05940.")
CATS_SCANS_PROTOCOL = {"source": "vcheplygina/cats-scans results/aucs_scores_distances_experts.csv",
                       "architecture": "resnet50 (Keras)", "folds": 5,
                       "evaluation": "5-fold cross-validation, AUC (one-vs-rest weighted)"}


def _read_csv(path: Path, nrows: int | None = None) -> pd.DataFrame:
    try:
        return pd.read_csv(path, nrows=nrows)
    except FileNotFoundError:
        raise TransferTableError(f"No file {path}.", "Check the path.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise TransferTableError(f"{path} is not a readable CSV: {err}.",
                                 "Give a comma-separated file with a header line.") from None


def _require(frame: pd.DataFrame, columns: Sequence[str], path: Path, hint: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TransferTableError(f"{path.name} lacks column(s) {missing}; it has "
                                 f"{list(frame.columns)}.", hint)


def _numeric(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise TransferTableError(f"{path.name} line {i + 2}, column '{column}': "
                                 f"{frame[column].iloc[i]!r} is not a number.",
                                 "Give numbers (a point as decimal separator).")
    return values


# --- plain CSV ----------------------------------------------------------------------------------


def _metric_column(frame: pd.DataFrame, metric: str | None, path: Path) -> str:
    keys = {"candidate", "target", "repeat", "fold", "candidate_kind"}
    if metric is not None:
        _require(frame, [metric], path, f"Name the metric column '{metric}', or pass --metric "
                 "with the name of the column that holds it.")
        return metric
    rest = [c for c in frame.columns if c not in keys]
    if len(rest) != 1:
        raise TransferTableError(f"{path.name} must have exactly one metric column besides "
                                 f"candidate, target, repeat and fold; it has {rest}.",
                                 "Keep one metric column, or pass --metric NAME.")
    return rest[0]


def _attributes(path: Path | None) -> pd.DataFrame:
    cols = ["candidate", "candidate_kind", "candidate_images", "candidate_classes",
            "candidate_params"]
    if path is None:
        return pd.DataFrame(columns=cols)
    frame = _read_csv(path)
    _require(frame, ["candidate"], path, "Give candidate and at least one of kind, images "
             "(or size), classes, params.")
    frame = frame.rename(columns={"kind": "candidate_kind", "size": "candidate_images",
                                  "images": "candidate_images", "classes": "candidate_classes",
                                  "params": "candidate_params"})
    for c in ("candidate_images", "candidate_classes", "candidate_params"):
        if c in frame.columns:
            frame[c] = _numeric(frame, c, path)
    extra = sorted(set(frame.columns) - set(cols))
    if extra:
        raise TransferTableError(f"{path.name} has unknown column(s) {extra}.",
                                 "Use candidate, kind, images (or size), classes, params.")
    if frame["candidate"].duplicated().any():
        raise TransferTableError(f"{path.name} names candidate "
                                 f"{frame.loc[frame['candidate'].duplicated(), 'candidate'].iloc[0]!r}"
                                 " twice.", "Give one row per candidate.")
    return frame.reindex(columns=cols)


def _scores(paths: Sequence[Path]) -> pd.DataFrame:
    frames = []
    for path in paths:
        frame = _read_csv(path)
        _require(frame, ["candidate", "target"], path,
                 "Give candidate, target and one column per method (higher = better).")
        methods = [c for c in frame.columns if c not in ("candidate", "target")]
        if not methods:
            raise TransferTableError(f"{path.name} has no method column.",
                                     "Add one column per method, named after it.")
        for m in methods:
            frame[m] = _numeric(frame, m, path)
        frames.append(frame.melt(["candidate", "target"], methods, "method", "score")
                      .dropna(subset=["score"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["candidate", "target", "method", "score"])


def read_plain(path: Path, *, metric: str | None = None, scores: Sequence[Path] = (),
               attributes: Path | None = None, meta: dict[str, Any] | None = None
               ) -> TransferTable:
    """A transfer table from a plain results CSV, score CSVs and an attribute CSV."""
    path = Path(path)
    frame = _read_csv(path)
    _require(frame, ["candidate", "target", "repeat"], path,
             "Give candidate, target, repeat (0, 1, ...), optionally fold, and one metric column.")
    column = _metric_column(frame, metric, path)
    frame[column] = _numeric(frame, column, path)
    results = frame.rename(columns={column: "value"}).assign(metric=column)
    attrs = _attributes(attributes)
    kinds = attrs.set_index("candidate")["candidate_kind"]
    results = results.merge(attrs.drop(columns="candidate_kind"), on="candidate", how="left")
    given = (results["candidate_kind"] if "candidate_kind" in results
             else results["candidate"].map(kinds)).astype(object)
    inferred = np.where(results["candidate"] == SCRATCH, SCRATCH,
                        np.where(results["candidate_params"].notna(), "model", "dataset"))
    results["candidate_kind"] = np.where(given.notna(), given, inferred)
    table = TransferTable(results=results, scores=_scores(scores), meta={
        "metric": column, "repeats_are": "independent repeats", **(meta or {})})
    return validate(table, labels={"results": path.name, "scores": "the score CSV(s)"})


# --- the cats-scans repository's file -----------------------------------------------------------


def read_cats_scans(path: Path, meta: dict[str, Any] | None = None) -> TransferTable:
    """The per-fold results of van den Brandt et al. (2021) (see the module docstring): fold
    AUCs as repeat 0, folds 0-4; self rows as ``scratch``; the Task2Vec distance (mean over
    folds) and the expert distance as method scores ``task2vec`` and ``expert`` (negated:
    higher = predicted better)."""
    path = Path(path)
    frame = _read_csv(path)
    folds = sorted((c for c in frame.columns if re.fullmatch(r"fold_\d+", c)),
                   key=lambda c: int(c[5:]))
    distances = [c for c in frame.columns if re.fullmatch(r"distance_\d+", c)]
    _require(frame, ["source", "target", "expert_distance"], path,
             "This reader takes results/aucs_scores_distances_experts.csv of vcheplygina/"
             "cats-scans as downloaded.")
    if not folds or not distances:
        raise TransferTableError(f"{path.name} has no fold_k or distance_k columns.",
                                 "Give the file as downloaded from vcheplygina/cats-scans.")
    for c in [*folds, *distances, "expert_distance"]:
        frame[c] = _numeric(frame, c, path)
    self_rows = frame["source"] == frame["target"]
    candidate = frame["source"].where(~self_rows, SCRATCH)
    rows = [{"candidate": cand, "candidate_kind": SCRATCH if cand == SCRATCH else "dataset",
             "target": target, "repeat": 0, "fold": int(f[5:]) - 1, "metric": "auc",
             "value": value}
            for cand, target, (_, r) in zip(candidate, frame["target"], frame.iterrows())
            for f in folds if pd.notna(value := r[f])]
    pairs = frame[~self_rows]
    scores = pd.concat([
        pd.DataFrame({"candidate": pairs["source"], "target": pairs["target"],
                      "method": "task2vec", "score": -pairs[distances].mean(axis=1)}),
        pd.DataFrame({"candidate": pairs["source"], "target": pairs["target"],
                      "method": "expert", "score": -pairs["expert_distance"]})],
        ignore_index=True).dropna(subset=["score"])
    protocol = dict(CATS_SCANS_PROTOCOL)
    table = TransferTable(results=pd.DataFrame(rows), scores=scores, meta={
        "title": "Cats, not CAT scans: fold AUCs, Task2Vec and expert distances",
        "metric": "auc", "repeats_are": "folds of one split", "protocol": protocol,
        "protocol_id": protocol_id(protocol), "citation": CATS_SCANS_CITATION,
        "licenses": [{"name": "unknown", "title": "The source repository carries no licence: "
                      "for your own analysis; do not redistribute."}],
        "methods": {"task2vec": {"description": "minus the Task2Vec distance (mean over the 5 "
                                 "folds' embeddings), as published"},
                    "expert": {"description": "minus the Hamming distance of the six expert "
                               "meta-features, as published"}},
        **(meta or {})})
    return validate(table, labels={"results": path.name, "scores": path.name})


# --- model-zoo tables ---------------------------------------------------------------------------


def read_model_zoo(path: Path, *, metric: str = "accuracy", meta: dict[str, Any] | None = None
                   ) -> TransferTable:
    """One row per pretrained model, one column per target (see the module docstring); the
    models' parameter counts go to ``candidate_params`` (the static ranking by size) and their
    ImageNet top-1 accuracy, where given, becomes the method ``imagenet-accuracy``."""
    path = Path(path)
    frame = _read_csv(path)
    _require(frame, ["model"], path, "Give a 'model' column, optionally 'params' and "
             "'imagenet_top1', then one column per target dataset.")
    attrs = [c for c in ("params", "imagenet_top1") if c in frame.columns]
    targets = [c for c in frame.columns if c not in ("model", *attrs)]
    if not targets:
        raise TransferTableError(f"{path.name} has no target column.",
                                 "Add one column per target dataset with the fine-tuned metric.")
    for c in [*targets, *attrs]:
        frame[c] = _numeric(frame, c, path)
    long = frame.melt(["model", *attrs], targets, "target", "value").dropna(subset=["value"])
    results = pd.DataFrame({"candidate": long["model"], "candidate_kind": "model",
                            "target": long["target"], "repeat": 0, "metric": metric,
                            "value": long["value"],
                            "candidate_params": long["params"] if "params" in long else pd.NA})
    scores = pd.DataFrame(columns=["candidate", "target", "method", "score"])
    methods = {}
    if "imagenet_top1" in long:
        scores = pd.DataFrame({"candidate": long["model"], "target": long["target"],
                               "method": "imagenet-accuracy", "score": long["imagenet_top1"]}
                              ).dropna(subset=["score"])
        methods["imagenet-accuracy"] = {"description": "the model's ImageNet top-1 accuracy: "
                                        "one static ranking for every target"}
    table = TransferTable(results=results, scores=scores, meta={
        "metric": metric, "repeats_are": "independent repeats", "methods": methods,
        **(meta or {})})
    return validate(table, labels={"results": path.name, "scores": path.name})


# --- any of them --------------------------------------------------------------------------------


def detect(path: Path) -> str:
    """The format of ``path`` (a folder with a descriptor is a package; a CSV by its header)."""
    if path.is_dir():
        if (path / DESCRIPTOR).is_file():
            return "package"
        raise TransferTableError(f"{path} is a folder without {DESCRIPTOR}.",
                                 "Give a transfer table folder or a CSV file.")
    header = set(_read_csv(path, nrows=0).columns)  # the reader chosen parses the rows
    if {"source", "target", "expert_distance"} <= header and any(
            re.fullmatch(r"fold_\d+", c) for c in header):
        return "cats-scans"
    if {"candidate", "target"} <= header:
        return "plain"
    if "model" in header:
        return "model-zoo"
    raise TransferTableError(f"Cannot tell the layout of {path.name} from its header "
                             f"{sorted(header)}.", "Pass --format (plain, cats-scans or "
                             "model-zoo); docs/sharing.md describes each.")


def read_any(path: Path, *, fmt: str = "auto", metric: str | None = None,
             scores: Sequence[Path] = (), attributes: Path | None = None,
             meta: dict[str, Any] | None = None) -> TransferTable:
    """A transfer table from ``path`` in format ``fmt`` (``auto``: :func:`detect`)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise TransferTableError(f"No file or folder {path}.", "Check the path.")
    fmt = detect(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise TransferTableError(f"Unknown format '{fmt}'.", f"Use one of {list(FORMATS)}.")
    if (scores or attributes) and fmt != "plain":
        raise TransferTableError(f"--scores and --attributes go with a plain CSV, not a {fmt} "
                                 "file.", "Drop them, or give the results as a plain CSV.")
    if fmt == "package":
        return read_table(path)
    if fmt == "cats-scans":
        return read_cats_scans(path, meta)
    if fmt == "model-zoo":
        return read_model_zoo(path, metric=metric or "accuracy", meta=meta)
    return read_plain(path, metric=metric, scores=scores, attributes=attributes, meta=meta)
