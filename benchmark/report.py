"""`bench report`: the results table (CSV and markdown) and seed 004's Fig. 3, from the finished
pair runs of a suite's MLflow experiment; logged to MLflow as a ``report`` run too."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd

from benchmark.figures import auc_bars_figure, close_figure
from bench_core.tracking import Tracker
from registry.errors import BenchError

if TYPE_CHECKING:
    from benchmark.report_html import HtmlContext

COLUMNS = ["target", "source", "kind", "k", "folds", "repeats", "auc_mean", "auc_std",
           "transferability_mean", "transferability_std", "generality_mean", "run_id"]
FOLD_COLUMNS = ["target", "source", "kind", "k", "fold", "repeat", "auc", "accuracy",
                "transferability", "shift_metrics"]


@dataclass(frozen=True)
class Report:
    table: pd.DataFrame
    files: dict[str, Path]
    run_id: str | None
    correlations: pd.DataFrame | None = None
    evaluation: pd.DataFrame | None = None  # each probe and baseline per target
    summary: pd.DataFrame | None = None     # means over targets beside the noise ceiling
    shift_lines: pd.DataFrame | None = None    # probit line per target, shift and metric
    shift_sources: pd.DataFrame | None = None  # drop and effective robustness per source
    scatter: dict[str, pd.DataFrame] | None = None  # per probe: pairs with their distance
    shift_models: pd.DataFrame | None = None   # per model and shifted set: both scores


def results_table(tracker: Tracker, suite: str, hashes: set[str] | None = None) -> pd.DataFrame:
    """One row per source -> target pair: the latest finished run (only ``hashes`` if given)."""
    return results_tables(tracker, suite, hashes)[0]


def results_tables(tracker: Tracker, suite: str, hashes: set[str] | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pair table and the fold table (one row per fold and repeat of those pairs)."""
    runs = tracker.client.search_runs(
        [tracker.experiment_id],
        f"tags.level = 'pair' and tags.suite = '{suite}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=5000)
    rows, seen, fold_rows = [], set(), []
    for r in runs:
        t, m = r.data.tags, r.data.metrics
        if hashes is not None and t.get("config_hash") not in hashes:
            continue
        key = (t["target"], t["source"], t["kind"], t.get("k"))
        if key in seen:
            continue
        seen.add(key)
        kids = _fold_rows(tracker, r.info.run_id, t)
        fold_rows += kids
        repeats = len({k["repeat"] for k in kids}) or 1
        rows.append({"target": t["target"], "source": t["source"], "kind": t["kind"],
                     "k": int(t["k"]) if t.get("k") else None,
                     "folds": len({k["fold"] for k in kids}), "repeats": repeats,
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
    table = table.sort_values(["target", "_o", "k", "auc_mean"],
                              ascending=[True, True, True, False],
                              na_position="first").drop(columns="_o").reset_index(drop=True)
    return table, pd.DataFrame(fold_rows, columns=FOLD_COLUMNS)


def _fold_rows(tracker: Tracker, parent_id: str, tags: dict[str, str]) -> list[dict]:
    kids = tracker.client.search_runs([tracker.experiment_id],
                                      f"tags.mlflow.parentRunId = '{parent_id}' and "
                                      "attributes.status = 'FINISHED'", max_results=5000)
    return [{"target": tags["target"], "source": tags["source"], "kind": tags["kind"],
             "k": int(tags["k"]) if tags.get("k") else None, "fold": int(c.data.tags["fold"]),
             "repeat": int(c.data.tags.get("repeat", 0)), "auc": c.data.metrics.get("test_auc"),
             "accuracy": c.data.metrics.get("test_accuracy"),
             "transferability": c.data.metrics.get("transferability"),
             "shift_metrics": {k: v for k, v in c.data.metrics.items() if k.startswith("shift_")}}
            for c in kids]


def _markdown(table: pd.DataFrame, digits: int = 4) -> str:
    shown = table.drop(columns=["run_id"], errors="ignore")
    head = "| " + " | ".join(shown.columns) + " |"
    sep = "|" + "---|" * len(shown.columns)
    lines = [head, sep]
    for _, row in shown.iterrows():
        cells = []
        for col, value in row.items():
            if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
                cells.append("")
            elif col in ("k", "folds", "n"):
                cells.append(str(int(value)))
            elif isinstance(value, float):
                cells.append(f"{value:.2f}" if "transferability" in col else f"{value:.{digits}f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _beside_ceiling(corr: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """Each correlation row with the split-half Spearman ceiling of its scope (None without
    repeats): how high a probe's rho could go given the noise of the truth."""
    from benchmark.evaluation import transferability_ceiling

    rows = repeat_results(folds)
    rows = rows[rows["source"] != rows["target"]].dropna(subset=["transferability"])
    ceiling = transferability_ceiling(rows) if len(rows) else {}
    corr = corr.copy()
    corr["rho_ceiling"] = [ceiling.get(str(scope)) for scope in corr["scope"]]
    return corr


def _correlations(probes: dict[str, tuple[list[str], np.ndarray]], table: pd.DataFrame,
                  folds: pd.DataFrame, out_dir: Path, files: dict[str, Path]
                  ) -> tuple[pd.DataFrame | None, dict[str, pd.DataFrame] | None]:
    """Transferability vs each logged probe's distances: CSV, markdown and Fig. 4; the
    correlations (beside the noise ceiling of Spearman's rho) and the pairs each probe scored."""
    from probes.correlation import correlations, scatter_figure

    transfers = table[table["kind"] == "transfer"][["source", "target", "transferability_mean"]]
    transfers = transfers.dropna()
    if not probes or transfers.empty:
        return None, None
    corr, joined = correlations(transfers, probes)
    if corr.empty:
        return None, joined
    corr = _beside_ceiling(corr, folds)
    files["correlations_csv"] = out_dir / "correlations.csv"
    files["correlations_markdown"] = out_dir / "correlations.md"
    files["fig4"] = out_dir / "fig4_transferability_vs_distance.png"
    corr.to_csv(files["correlations_csv"], index=False)
    files["correlations_markdown"].write_text(_markdown(corr, digits=3))
    fig = scatter_figure(joined)
    fig.savefig(files["fig4"], dpi=120)
    close_figure(fig)
    return corr, joined


def repeat_results(folds: pd.DataFrame) -> pd.DataFrame:
    """Transfer results per (source, target, repeat): the mean over that repeat's folds."""
    transfer = folds[folds["kind"] == "transfer"]
    if transfer.empty:
        return pd.DataFrame(columns=["source", "target", "repeat", "auc", "transferability"])
    return transfer.groupby(["source", "target", "repeat"], as_index=False)[
        ["auc", "transferability"]].mean()


def probe_scores(probes: dict[str, tuple[list[str], np.ndarray]]) -> dict[str, pd.DataFrame]:
    """Each probe's matrix as scores (source, target, score = -distance: higher is better)."""
    out = {}
    for method, (names, matrix) in probes.items():
        out[method] = pd.DataFrame([{"source": s, "target": t, "score": -float(matrix[i, j])}
                                    for i, s in enumerate(names) for j, t in enumerate(names)
                                    if i != j])
    return out


def _evaluation(probes: dict[str, tuple[list[str], np.ndarray]], folds: pd.DataFrame,
                sizes: dict[str, int], out_dir: Path, files: dict[str, Path], include_self: bool
                ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Every probe against the baselines (random, best on average over the other targets,
    largest source) and beside the noise ceiling: CSV and markdown; the spread over repeats."""
    from benchmark.evaluation import evaluate_probes, noise_ceiling, pair_spread, summarize

    results = repeat_results(folds)
    if results.empty:
        return None, None
    ceiling = noise_ceiling(results, include_self=include_self)
    spread = pair_spread(results, include_self=include_self)
    evaluation = evaluate_probes(results, probe_scores(probes), sizes,
                                 include_self=include_self)
    summary = summarize(evaluation, ceiling)
    for name, frame in (("evaluation", evaluation), ("evaluation_summary", summary),
                        ("noise_ceiling", ceiling), ("spread", spread)):
        files[f"{name}_csv"] = out_dir / f"{name}.csv"
        frame.to_csv(files[f"{name}_csv"], index=False)
    files["evaluation_markdown"] = out_dir / "evaluation.md"
    files["evaluation_markdown"].write_text(evaluation_markdown(summary, ceiling, spread))
    return evaluation, summary


def evaluation_markdown(summary: pd.DataFrame, ceiling: pd.DataFrame,
                        spread: pd.DataFrame) -> str:
    """The probes-against-baselines table, the noise ceiling per target and the spread."""
    cols = ["method", "kind", "n_targets", "weighted_tau", "kendall_tau", "spearman_rho",
            "top1_regret", "noise_ceiling", "beats_random_weighted_tau",
            "beats_best_on_average_weighted_tau", "beats_largest_source_weighted_tau",
            "beats_best_on_average_top1_regret"]
    parts = ["## Probes against baselines (means over targets)\n",
             _markdown(summary[[c for c in cols if c in summary]], digits=3),
             "\n## Noise ceiling (split-half Kendall tau of the ground truth)\n",
             _markdown(ceiling, digits=3)]
    if len(spread) and spread["n_repeats"].max() > 1:
        parts += ["\n## Spread over repeats (mean of each repeat's folds)\n",
                  _markdown(spread, digits=4)]
    return "\n".join(parts)


def shift_models(folds: pd.DataFrame) -> pd.DataFrame:
    """One row per fine-tuned model (fold run, freezing excluded) and shifted set: its
    original and shifted accuracy and AUC, and the images behind them (orig_n, shift_n; NaN
    for runs logged before they were)."""
    import re

    key = re.compile(r"^shift_(.+)_(accuracy|auc|n_orig|n)$")
    rows = []
    for _, f in folds[folds["kind"] != "freeze"].iterrows():
        shifted = f["shift_metrics"] or {}
        labels = {m.group(1) for k in shifted if (m := key.match(k))}
        for label in sorted(labels):
            rows.append({"target": f["target"], "shift": label, "source": f["source"],
                         "fold": f["fold"], "repeat": f["repeat"],
                         "orig_accuracy": f["accuracy"], "orig_auc": f["auc"],
                         "shift_accuracy": shifted.get(f"shift_{label}_accuracy"),
                         "shift_auc": shifted.get(f"shift_{label}_auc"),
                         "orig_n": shifted.get(f"shift_{label}_n_orig", np.nan),
                         "shift_n": shifted.get(f"shift_{label}_n", np.nan)})
    if not rows:
        return pd.DataFrame(rows)
    # a canonical order: the seeded bootstrap of the analysis resamples by position, and the
    # tracking store returns runs in no fixed order (two stores of the same results disagreed)
    return pd.DataFrame(rows).sort_values(["target", "shift", "source", "repeat", "fold"],
                                          ignore_index=True)


def _shifts(folds: pd.DataFrame, out_dir: Path, files: dict[str, Path]
            ) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    """Seed 001 per target and shifted set: the probit line over all models (accuracy, the
    paper's metric, and AUC), each source's drop and effective robustness, the plot."""
    from benchmark.figures import close_figure
    from benchmark.shifts import shift_analysis, shift_figure

    models = shift_models(folds) if len(folds) else pd.DataFrame()
    if models.empty:
        return None, None, None
    parts = [shift_analysis(models, metric) for metric in ("accuracy", "auc")]
    lines = pd.concat([p[0] for p in parts], ignore_index=True)
    sources = pd.concat([p[1] for p in parts], ignore_index=True)
    for name, frame in (("shift_models", models), ("shift_lines", lines),
                        ("shift_sources", sources)):
        files[f"{name}_csv"] = out_dir / f"{name}.csv"
        frame.to_csv(files[f"{name}_csv"], index=False)
    files["shift_markdown"] = out_dir / "shift.md"
    files["shift_markdown"].write_text(
        "## Distribution shift: probit lines (all models of a target)\n\n"
        + _markdown(lines, digits=3)
        + "\n## Per source: mean drop and residual from the line with its bootstrap 95 % "
        "interval (above = effectively robust; 'on the line' when the interval holds 0)"
        "\n\n" + _markdown(sources, digits=3))
    for (target, shift), _ in models.groupby(["target", "shift"]):
        fig = shift_figure(models, lines[lines["metric"] == "accuracy"], target, shift)
        files[f"shift_fig_{target}_{shift}"] = out_dir / f"shift_{target}_{shift}.png"
        fig.savefig(files[f"shift_fig_{target}_{shift}"], dpi=120)
        close_figure(fig)
    return lines, sources, models


def write_report(tracker: Tracker, suite: str, out_dir: Path,
                 hashes: set[str] | None = None, log_to_mlflow: bool = True,
                 sizes: dict[str, int] | None = None, include_self: bool = False,
                 html: HtmlContext | None = None) -> Report:
    """Write results.csv, results.md and fig3_auc.png (and, when probes were logged for the
    suite, correlations.csv/.md and the Fig. 4 scatter; the probes against the baselines and
    the noise ceiling, evaluation*.csv/.md) into ``out_dir``; log them to MLflow. ``sizes``:
    training images per source, for the largest-source baseline."""
    table, folds = results_tables(tracker, suite, hashes)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"csv": out_dir / "results.csv", "markdown": out_dir / "results.md",
             "fig3": out_dir / "fig3_auc.png"}
    table.to_csv(files["csv"], index=False)
    files["markdown"].write_text(_markdown(table))
    plain = table[table["kind"] != "freeze"]
    fig = auc_bars_figure(plain)
    fig.savefig(files["fig3"], dpi=120)
    close_figure(fig)
    from probes.logging import load_probe_matrices

    probes = load_probe_matrices(tracker, suite)  # downloaded once, used twice
    corr, scatter = _correlations(probes, table, folds, out_dir, files)
    evaluation, summary = _evaluation(probes, folds, sizes or {}, out_dir, files, include_self)
    shift_lines, shift_sources, shift_models_ = _shifts(folds, out_dir, files)
    report = Report(table, files, None, corr, evaluation, summary, shift_lines, shift_sources,
                    scatter=scatter, shift_models=shift_models_)
    if html is not None:
        from benchmark.report_html import html_report

        files["html"] = html_report(report, suite, html, out_dir / "report.html")
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
            _log_summary(summary)
            _log_shift_lines(shift_lines, shift_sources)
            run_id = run.info.run_id
    return dataclasses.replace(report, run_id=run_id)


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
    """Each method's mean weighted tau and top-1 regret, and the noise ceiling, as metrics."""
    if summary is None:
        return
    for _, row in summary.iterrows():
        for metric in ("weighted_tau", "top1_regret"):
            if pd.notna(row[metric]):
                mlflow.log_metric(f"{metric}_{row['method']}", float(row[metric]))
    ceiling = summary["noise_ceiling"].dropna()
    if len(ceiling):
        mlflow.log_metric("noise_ceiling", float(ceiling.iloc[0]))
