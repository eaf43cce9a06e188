"""The report run in MLflow: the report's files as artifacts, the results as a table, and the
headline figures as metrics (each probe's pooled Spearman rho, each method's mean weighted tau
and top-1 regret, the noise ceiling, the shift lines and each source's robustness)."""

from __future__ import annotations

import mlflow
import pandas as pd

from bench_core.tracking import Tracker


def log_report(tracker: Tracker, suite: str, report) -> str:
    """A ``report: SUITE`` run holding ``report`` (a :class:`~benchmark.report.writer.Report`);
    returns its run id."""
    with mlflow.start_run(experiment_id=tracker.experiment_id, run_name=f"report: {suite}",
                          tags={"suite": suite, "level": "report", **tracker.base_tags()}) as run:
        for path in report.files.values():
            mlflow.log_artifact(str(path), "report")
        mlflow.log_table(report.table, "report/results.json")
        _log_correlations(report.correlations)
        _log_summary(report.summary)
        _log_shift_lines(report.shift_lines, report.shift_sources)
        return run.info.run_id


def _log_correlations(corr: pd.DataFrame | None) -> None:
    """Each probe's pooled Spearman rho of transferability against its distance."""
    if corr is None:
        return
    for _, row in corr[corr["scope"] == "pooled"].iterrows():
        if row["spearman_rho"] is not None and not pd.isna(row["spearman_rho"]):
            mlflow.log_metric(f"spearman_rho_{row['probe']}", row["spearman_rho"])


def _log_shift_lines(lines: pd.DataFrame | None, sources: pd.DataFrame | None) -> None:
    """Each probit line (u, v and their intervals, r, the residual std) and, per source, the
    mean drop and residual with its interval and the effective robustness (+1 above the
    line, -1 below, 0 on it) as report-run metrics, keyed <target>_<shift>_<metric>."""
    if lines is None:
        return
    for _, row in lines.dropna(subset=["u"]).iterrows():
        key = f"{row['target']}_{row['shift']}_{row['metric']}"
        mlflow.log_metrics({f"probit_{name}_{key}": float(row[name])
                            for name in ("u", "u_low", "u_high", "v", "v_low", "v_high", "r",
                                         "resid_std") if pd.notna(row[name])})
    sign = {"above": 1.0, "below": -1.0, "on the line": 0.0}
    for _, row in sources.iterrows():
        key = f"{row['target']}_{row['shift']}_{row['metric']}_{row['source']}"
        values = {f"shift_{name}_{key}": row[name]
                  for name in ("drop", "residual", "residual_low", "residual_high")}
        values[f"shift_robustness_{key}"] = sign.get(row["effective_robustness"])
        mlflow.log_metrics({k: float(v) for k, v in values.items()
                            if v is not None and pd.notna(v)})


def _log_summary(summary: pd.DataFrame | None) -> None:
    """Each method's mean weighted tau and top-1 regret with their 95 % intervals
    (``weighted_tau_<method>``, ``weighted_tau_low_<method>`` ...), and the corrected noise
    ceiling with its interval, as metrics."""
    if summary is None:
        return
    values = {}
    for _, row in summary.iterrows():
        for metric in ("weighted_tau", "top1_regret"):
            for suffix in ("", "_low", "_high"):
                value = row[f"{metric}{suffix}"]
                if pd.notna(value):
                    values[f"{metric}{suffix}_{row['method']}"] = float(value)
    first = summary.iloc[0] if len(summary) else {}
    for key in ("weighted_tau_ceiling", "kendall_tau_ceiling"):
        if key in first and pd.notna(first[key]):
            values[key] = float(first[key])
    mlflow.log_metrics(values)
