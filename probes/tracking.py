"""A probe's MLflow run, written and read back in one place: one run per probe call with the
distance matrix as a table artifact (``distances.json``, ``distances.csv``), a heatmap figure
and the embeddings (npz); and each method's latest matrix logged for a suite, read back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import mlflow.artifacts
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench_core.tracking import Tracker, flatten
from probes.base import ProbeResult


def heatmap(result: ProbeResult):
    n = len(result.datasets)
    fig = Figure(figsize=(1.0 + 0.8 * n, 0.8 + 0.7 * n))
    ax = fig.add_subplot()
    im = ax.imshow(result.distances, cmap="viridis")
    ax.set_xticks(range(n), result.datasets, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), result.datasets, fontsize=8)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{result.distances[i, j]:.2f}", ha="center", va="center",
                    fontsize=7, color="w")
    ax.set_title(f"{result.method} distance")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def log_probe(tracker: Tracker, result: ProbeResult, options: dict,
              tags: dict[str, str] | None = None) -> str:
    """Log ``result`` as a run ``probe: METHOD``; return its run id."""
    tags = {"level": "probe", "probe": result.method, "datasets": ",".join(result.datasets),
            **tracker.base_tags(), **(tags or {})}
    with mlflow.start_run(experiment_id=tracker.experiment_id, run_name=f"probe: {result.method}",
                          tags=tags) as run:
        mlflow.log_params(flatten({"probe": result.method, "options": options}))
        frame = pd.DataFrame(result.distances, index=result.datasets, columns=result.datasets)
        mlflow.log_table(frame.reset_index(names="dataset"), "distances.json")
        mlflow.log_text(frame.to_csv(), "distances.csv")
        mlflow.log_figure(heatmap(result), "heatmap.png")
        for name, draw in result.figures.items():
            mlflow.log_figure(draw(), name)
        if result.details:
            mlflow.log_dict(result.details, "details.json")
        if result.embeddings:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "embeddings.npz"
                np.savez(path, **{k: np.asarray(v) for k, v in result.embeddings.items()})
                mlflow.log_artifact(str(path))
        return run.info.run_id


def load_probe_matrices(tracker: Tracker, suite: str) -> dict[str, tuple[list[str], np.ndarray]]:
    """The latest finished probe run of each method logged for ``suite``: names and matrix."""

    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        f"tags.level = 'probe' and tags.suite = '{suite}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"])
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    for run in runs:
        method = run.data.tags["probe"]
        if method in out:
            continue
        path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                   artifact_path="distances.csv",
                                                   tracking_uri=tracker.uri)
        frame = pd.read_csv(path, index_col=0)
        out[method] = (list(frame.index), frame.to_numpy(dtype=float))
    return out
