"""Files in the exact layouts the result readers take, made by the tests (nothing is shipped):
the cats-scans repository's per-fold CSV (its header and row shape, with numbers of our own),
a plain results CSV with score and attribute CSVs, and a model-zoo table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CATS_SOURCES = ["imagenet", "stl10", "sti10", "textures", "isic", "chest", "pcam-middle"]
CATS_TARGETS = ["isic", "chest", "pcam-middle"]


def cats_scans_csv(path: Path, seed: int = 0) -> Path:
    """results/aucs_scores_distances_experts.csv as the repository lays it out: an unnamed
    index column, source, target, fold_1..5, mean, std, score_k and distance_k interleaved,
    expert_distance; self rows (source == target) with zero scores and distances."""
    rng = np.random.default_rng(seed)
    rows = []
    scratch = {t: 0.85 + 0.1 * rng.random() + rng.normal(0, 0.005, 5) for t in CATS_TARGETS}
    t2v = {(s, t): rng.random() for s in CATS_SOURCES for t in CATS_TARGETS}
    for s in CATS_SOURCES:
        for t in CATS_TARGETS:
            self_row = s == t
            folds = scratch[t] if self_row else scratch[t].mean() + rng.normal(0, 0.03) + \
                rng.normal(0, 0.005, 5)
            row = {"source": s, "target": t,
                   **{f"fold_{k + 1}": folds[k] for k in range(5)},
                   "mean": folds.mean(), "std": folds.std()}
            for k in range(5):  # Eq. 1 against the scratch run of the same fold, as theirs
                row[f"score_{k + 1}"] = 0.0 if self_row else \
                    (folds[k] - scratch[t][k]) / scratch[t][k] * 100
                row[f"distance_{k + 1}"] = 0.0 if self_row else t2v[(s, t)] + 0.01 * k
            row["expert_distance"] = 0.0 if self_row else float(rng.integers(0, 7))
            rows.append(row)
    pd.DataFrame(rows).to_csv(path)          # the repository's file keeps pandas' index
    return path


def plain_files(folder: Path, seed: int = 0, n_targets: int = 3) -> dict[str, Path]:
    """results.csv (candidate,target,repeat,auc with a scratch row per repeat), scores.csv
    (candidate,target,good,noise) and attributes.csv (candidate,size)."""
    rng = np.random.default_rng(seed)
    sources = ["a", "b", "c", "d"]
    rows, scores = [], []
    for k in range(n_targets):
        target = f"t{k}"
        quality = dict(zip(sources, rng.normal(0, 1, 4)))
        for r in range(2):
            rows.append({"candidate": "scratch", "target": target, "repeat": r,
                         "auc": 0.7 + rng.normal(0, 0.01)})
            rows += [{"candidate": s, "target": target, "repeat": r,
                      "auc": 0.8 + 0.03 * q + rng.normal(0, 0.005)}
                     for s, q in quality.items()]
        scores += [{"candidate": s, "target": target, "good": q + rng.normal(0, 0.1),
                    "noise": rng.normal()} for s, q in quality.items()]
    folder.mkdir(parents=True, exist_ok=True)
    out = {"results": folder / "results.csv", "scores": folder / "scores.csv",
           "attributes": folder / "attributes.csv"}
    pd.DataFrame(rows).to_csv(out["results"], index=False)
    pd.DataFrame(scores).to_csv(out["scores"], index=False)
    pd.DataFrame({"candidate": sources, "size": [100, 5000, 300, 40]}).to_csv(
        out["attributes"], index=False)
    return out


def model_zoo_csv(path: Path, seed: int = 0) -> Path:
    """A model-zoo table: model, params, imagenet_top1, then fine-tuned accuracy per target."""
    rng = np.random.default_rng(seed)
    models = ["resnet18", "resnet50", "densenet121", "mobilenet_v2", "inception_v3"]
    frame = pd.DataFrame({"model": models,
                          "params": [11_700_000, 25_600_000, 8_000_000, 3_500_000, 27_200_000],
                          "imagenet_top1": [69.8, 76.1, 74.4, 71.9, 77.3]})
    for target in ("aircraft", "cars", "dtd", "pets"):
        frame[target] = 60 + 30 * rng.random(len(models))
    frame.to_csv(path, index=False)
    return path
