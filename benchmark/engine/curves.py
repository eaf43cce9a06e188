"""The training-curve figure of a pair (validation AUC per epoch of each fold), logged with the
pair's parent run. Matplotlib's object-oriented ``Figure`` (no pyplot, no backend switch)."""

from __future__ import annotations

from matplotlib.figure import Figure

from bench_core.tracking import Tracker


def curves_figure(tracker: Tracker, parent_id: str, title: str) -> Figure:
    """Validation AUC per epoch of every finished fold run below ``parent_id``."""
    children = tracker.client.search_runs([tracker.experiment_id],
                                          f"tags.mlflow.parentRunId = '{parent_id}'")
    fig = Figure(figsize=(5, 3.2))
    ax = fig.add_subplot()
    for run in sorted(children, key=lambda r: int(r.data.tags.get("fold", 0))):
        hist = tracker.client.get_metric_history(run.info.run_id, "val_auc")
        steps = sorted(hist, key=lambda m: m.step)
        ax.plot([m.step for m in steps], [m.value for m in steps],
                label=f"fold {run.data.tags.get('fold')}")
    ax.set(xlabel="epoch", ylabel="validation AUC", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
