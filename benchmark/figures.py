"""Figures: training curves of a pair's folds, and seed 004's Fig. 3 (mean AUC per source per
target with error bars). Matplotlib's Agg backend; functions return figures, callers save."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd

    from bench_core.tracking import Tracker


def close_figure(fig) -> None:
    """Release a figure once it is saved or logged (pyplot keeps every open figure)."""
    plt.close(fig)


def curves_figure(tracker: Tracker, parent_id: str, title: str):
    """Validation AUC per epoch of every finished fold run below ``parent_id``."""
    children = tracker.client.search_runs([tracker.experiment_id],
                                          f"tags.mlflow.parentRunId = '{parent_id}'")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for run in sorted(children, key=lambda r: int(r.data.tags.get("fold", 0))):
        hist = tracker.client.get_metric_history(run.info.run_id, "val_auc")
        steps = sorted(hist, key=lambda m: m.step)
        ax.plot([m.step for m in steps], [m.value for m in steps],
                label=f"fold {run.data.tags.get('fold')}")
    ax.set(xlabel="epoch", ylabel="validation AUC", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def auc_bars_figure(table: pd.DataFrame):
    """Seed 004's Fig. 3: mean test AUC (std as error bars) per source, grouped by target."""
    targets = list(dict.fromkeys(table["target"]))
    sources = list(dict.fromkeys(table["source"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(targets) * max(1, len(sources)) / 3 + 1.5),
                                    3.6))
    width = 0.8 / max(len(sources), 1)
    for j, src in enumerate(sources):
        rows = table[table["source"] == src].set_index("target").reindex(targets)
        xs = [i + (j - (len(sources) - 1) / 2) * width for i in range(len(targets))]
        ax.bar(xs, rows["auc_mean"], width, yerr=rows["auc_std"], capsize=2, label=src)
    ax.set_xticks(range(len(targets)), targets)
    low = float(table["auc_mean"].min() - table["auc_std"].fillna(0).max() - 0.02)
    ax.set_ylim(max(0.0, min(low, 0.95)), 1.0)
    ax.set(ylabel="test AUC (mean over folds)", title="AUC per source and target")
    ax.legend(fontsize=7, title="source", title_fontsize=7, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig
