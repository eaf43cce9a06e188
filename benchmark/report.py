"""`bench report`: the results table (CSV and markdown) and seed 004's Fig. 3, from the finished
pair runs of a suite's MLflow experiment; logged to MLflow as a ``report`` run too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from benchmark.figures import auc_bars_figure, close_figure
from bench_core.tracking import Tracker
from registry.errors import BenchError

COLUMNS = ["target", "source", "kind", "k", "folds", "auc_mean", "auc_std",
           "transferability_mean", "transferability_std", "generality_mean", "run_id"]


@dataclass(frozen=True)
class Report:
    table: pd.DataFrame
    files: dict[str, Path]
    run_id: str | None
    correlations: pd.DataFrame | None = None


def results_table(tracker: Tracker, suite: str, hashes: set[str] | None = None) -> pd.DataFrame:
    """One row per source -> target pair: the latest finished run (only ``hashes`` if given)."""
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        f"tags.level = 'pair' and tags.suite = '{suite}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=5000)
    rows, seen = [], set()
    for r in runs:
        t, m = r.data.tags, r.data.metrics
        if hashes is not None and t.get("config_hash") not in hashes:
            continue
        key = (t["target"], t["source"], t["kind"], t.get("k"))
        if key in seen:
            continue
        seen.add(key)
        n = len(tracker.client.search_runs([tracker.experiment_id],
                                           f"tags.mlflow.parentRunId = '{r.info.run_id}'"))
        rows.append({"target": t["target"], "source": t["source"], "kind": t["kind"],
                     "k": int(t["k"]) if t.get("k") else None, "folds": n,
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
    return table.sort_values(["target", "_o", "k", "auc_mean"], ascending=[True, True, True, False],
                             na_position="first").drop(columns="_o").reset_index(drop=True)


def _markdown(table: pd.DataFrame, digits: int = 4) -> str:
    shown = table.drop(columns=["run_id"], errors="ignore")
    head = "| " + " | ".join(shown.columns) + " |"
    sep = "|" + "---|" * len(shown.columns)
    lines = [head, sep]
    for _, row in shown.iterrows():
        cells = []
        for col, value in row.items():
            if value is None or (isinstance(value, float) and pd.isna(value)):
                cells.append("")
            elif col in ("k", "folds", "n"):
                cells.append(str(int(value)))
            elif isinstance(value, float):
                cells.append(f"{value:.2f}" if "transferability" in col else f"{value:.{digits}f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _correlations(tracker: Tracker, suite: str, table: pd.DataFrame, out_dir: Path,
                  files: dict[str, Path]) -> pd.DataFrame | None:
    """Transferability vs each logged probe's distances: CSV, markdown and Fig. 4."""
    from probes.correlation import correlations, scatter_figure
    from probes.logging import load_probe_matrices

    probes = load_probe_matrices(tracker, suite)
    transfers = table[table["kind"] == "transfer"][["source", "target", "transferability_mean"]]
    transfers = transfers.dropna()
    if not probes or transfers.empty:
        return None
    corr, joined = correlations(transfers, probes)
    if corr.empty:
        return None
    files["correlations_csv"] = out_dir / "correlations.csv"
    files["correlations_markdown"] = out_dir / "correlations.md"
    files["fig4"] = out_dir / "fig4_transferability_vs_distance.png"
    corr.to_csv(files["correlations_csv"], index=False)
    files["correlations_markdown"].write_text(_markdown(corr, digits=3))
    fig = scatter_figure(joined)
    fig.savefig(files["fig4"], dpi=120)
    close_figure(fig)
    return corr


def write_report(tracker: Tracker, suite: str, out_dir: Path,
                 hashes: set[str] | None = None, log_to_mlflow: bool = True) -> Report:
    """Write results.csv, results.md and fig3_auc.png (and, when probes were logged for the
    suite, correlations.csv/.md and the Fig. 4 scatter) into ``out_dir``; log them to MLflow."""
    table = results_table(tracker, suite, hashes)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"csv": out_dir / "results.csv", "markdown": out_dir / "results.md",
             "fig3": out_dir / "fig3_auc.png"}
    table.to_csv(files["csv"], index=False)
    files["markdown"].write_text(_markdown(table))
    plain = table[table["kind"] != "freeze"]
    fig = auc_bars_figure(plain)
    fig.savefig(files["fig3"], dpi=120)
    close_figure(fig)
    corr = _correlations(tracker, suite, table, out_dir, files)
    run_id = None
    if log_to_mlflow:
        with mlflow.start_run(experiment_id=tracker.experiment_id, run_name=f"report: {suite}",
                              tags={"suite": suite, "level": "report", **tracker.base_tags()}) as run:
            for path in files.values():
                mlflow.log_artifact(str(path), "report")
            mlflow.log_table(table, "report/results.json")
            if corr is not None:
                pooled = corr[corr["scope"] == "pooled"]
                for _, row in pooled.iterrows():
                    if row["spearman_rho"] is not None and not pd.isna(row["spearman_rho"]):
                        mlflow.log_metric(f"spearman_rho_{row['probe']}", row["spearman_rho"])
            run_id = run.info.run_id
    return Report(table, files, run_id, corr)
