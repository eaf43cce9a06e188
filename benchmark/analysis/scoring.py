"""`bench score`: judge any method's per-pair scores against a ground truth that already exists
(a result set or a suite's store), without fine-tuning anything: the probe author's workflow.

The scores file is a CSV ``candidate,target,<method>...`` (``source`` is taken for
``candidate``), one column per method, higher = predicted better transfer (negate distances).
Each column is evaluated exactly as the report evaluates a probe
(:func:`benchmark.analysis.evaluation.evaluate`: intervals over targets, the exact permutation
test against a random ranking, paired verdicts against best-on-average and static-size, the
noise ceiling), beside the methods the truth's source already holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.analysis.ceiling import noise_ceiling
from benchmark.analysis.evaluation import BASELINES, Evaluation, evaluate
from benchmark.analysis.transfer_data import AnalysisInputs
from registry.errors import BenchError


class ScoresError(BenchError):
    """A scores file that cannot be judged as it is."""


def read_scores(path: Path) -> dict[str, pd.DataFrame]:
    """The methods of a scores CSV: name -> (source, target, score), NaN scores dropped."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise ScoresError(f"No file {path}.", "Check the path.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ScoresError(f"{path} is not a readable CSV: {err}.",
                          "Give candidate,target and one column per method.") from None
    frame = frame.rename(columns={"source": "candidate"})
    missing = [c for c in ("candidate", "target") if c not in frame.columns]
    methods = [c for c in frame.columns if c not in ("candidate", "target")]
    if missing or not methods:
        raise ScoresError(f"{path.name} needs columns candidate, target and at least one method "
                          f"column; it has {list(frame.columns)}.",
                          "One column per method, higher = predicted better transfer.")
    dup = frame.duplicated(["candidate", "target"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise ScoresError(f"{path.name} line {i + 2}: the pair {frame['candidate'].iloc[i]} -> "
                          f"{frame['target'].iloc[i]} appears twice.", "One row per pair.")
    out = {}
    for m in methods:
        values = pd.to_numeric(frame[m], errors="coerce")
        bad = values.isna() & frame[m].notna() | ~np.isfinite(values.fillna(0.0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ScoresError(f"{path.name} line {i + 2}, column '{m}': {frame[m].iloc[i]!r} "
                              "is not a finite number.", "Give finite numbers (leave a cell "
                              "empty where the method has no score).")
        out[m] = pd.DataFrame({"source": frame["candidate"].astype(str),
                               "target": frame["target"].astype(str),
                               "score": values}).dropna(subset=["score"])
    return out


def score_methods(inputs: AnalysisInputs, submitted: dict[str, pd.DataFrame], *,
                  include_self: bool = False) -> tuple[Evaluation, pd.DataFrame]:
    """``submitted`` methods (and the truth's own) evaluated against ``inputs``' truth; also the
    noise ceiling. Refuses a method name the truth already holds or a baseline's name, and
    scores that cover no pair of the truth."""
    clash = sorted(set(submitted) & (set(inputs.scores) | set(BASELINES)))
    if clash:
        raise ScoresError(f"Method column(s) {clash} are already methods of "
                          f"'{inputs.label}' or names of the baselines.",
                          "Rename them in the scores file.")
    results = inputs.results()
    pairs = set(zip(results["source"], results["target"]))
    for name, table in submitted.items():
        covered = sum((s, t) in pairs for s, t in zip(table["source"], table["target"]))
        if covered == 0:
            raise ScoresError(f"Method '{name}' scores no (candidate, target) pair of "
                              f"'{inputs.label}'.", "Check the names: the truth's candidates "
                              f"are {sorted({p[0] for p in pairs})[:8]}...; its targets "
                              f"{sorted({p[1] for p in pairs})}.")
    ceiling = noise_ceiling(results, include_self)
    ev = evaluate(results, {**submitted, **inputs.scores}, inputs.sizes,
                  include_self=include_self, ceiling=ceiling)
    return ev, ceiling
