#!/usr/bin/env python
"""Paired comparisons between methods of a finished report: is one method better than another?

The report compares every method with the random ranking, best-on-average and the ranking by
size; this script compares named methods with each other, from the per-target figures the
report wrote (``evaluation.csv``), with the report's own test: the paired difference over the
targets both are scored on, its bootstrap-t interval and the verdict (which needs
``MIN_PAIRED`` targets). Every pair of the methods given, in both figures' directions.

    python tests/bench/compare_methods.py --suite wide --methods hscore,logme,learned,sfda
    python tests/bench/compare_methods.py --report DIR --methods hscore,logme
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.analysis.inference import ALPHA, TOO_FEW, paired_difference
from registry.paths import BenchPaths, resolve_home

METRICS = ("weighted_tau", "kendall_tau")


def compare(per_target: pd.DataFrame, methods: list[str], metric: str, seed: int = 0
            ) -> pd.DataFrame:
    """One row per pair (a, b) of ``methods``: mean of a - b over the targets both have, its
    interval, p, wins/ties/losses and the verdict."""
    wide = per_target.pivot(index="target", columns="method", values=metric)
    missing = [m for m in methods if m not in wide.columns]
    if missing:
        raise SystemExit(f"no method {missing} in the report; it has {sorted(wide.columns)}")
    rows = []
    for a, b in itertools.combinations(methods, 2):
        d = paired_difference(wide[a].to_numpy(), wide[b].to_numpy(), metric,
                              np.random.default_rng(seed))
        rows.append({"a": a, "b": b, "metric": metric, "a - b": d["diff"], "low": d["low"],
                     "high": d["high"], "p": d["p"], "won": d["wins"], "tied": d["ties"],
                     "lost": d["losses"], "verdict (a vs b)": d["verdict"]})
    out = pd.DataFrame(rows)
    out["p (Holm)"] = holm(out["p"].to_numpy())
    out["after Holm"] = [v if v in ("better", "worse") and q < ALPHA else
                         (v if v == TOO_FEW else "not distinguishable")
                         for v, q in zip(out["verdict (a vs b)"], out["p (Holm)"])]
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p, dtype=float)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok])]
    adjusted = np.full_like(p, np.nan)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="wide", help="its report in BENCH_HOME/reports/")
    parser.add_argument("--report", type=Path, help="a report folder instead")
    parser.add_argument("--methods", required=True, help="comma-separated method names")
    args = parser.parse_args()
    folder = args.report or BenchPaths(resolve_home()).home / "reports" / args.suite
    per_target = pd.read_csv(folder / "evaluation.csv")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    pd.set_option("display.width", 200)
    for metric in METRICS:
        print(compare(per_target, methods, metric).round(4).to_string(index=False), "\n")


if __name__ == "__main__":
    main()
