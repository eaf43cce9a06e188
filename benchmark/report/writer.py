"""The report's files, composed from analysis inputs whatever their source (a suite's store or
a result set): the results table (CSV and markdown) and Fig. 3 of van den Brandt et al. 2021,
transferability against every method's scores with Fig. 4, every method against the
baselines beside the noise ceiling, the distribution shift (:func:`compose_report`); a
suite's finished runs and logged probes read as those inputs (:func:`store_inputs`); and
:func:`write_report`, which adds the HTML page and logs the files as a ``report`` run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench_core.tracking import Tracker
from benchmark.analysis.evaluation import Assessment, assess
from benchmark.analysis.ceiling import transferability_ceiling
from benchmark.analysis.results import probe_scores, repeat_results, results_tables, shift_models
from benchmark.analysis.transfer_data import AnalysisInputs
from benchmark.analysis.shift_stats import shift_analysis
from benchmark.report.figures import auc_bars_figure, shift_figure
from benchmark.report.html import HtmlContext, html_report
from benchmark.report.markdown import evaluation_markdown, markdown_table
from benchmark.report.mlflow_log import log_report
from probes.correlation import correlations, scatter_figure
from probes.tracking import load_probe_matrices

# a table whose repeats are the folds of one split (the cats-scans table) says what that means
FOLDS_NOTE = ("\nThe repeats of this table are the folds of one split: the noise ceiling and "
              "the intervals measure fold-to-fold noise only, which understates the noise of a "
              "new split.\n")


@dataclass(frozen=True, kw_only=True)
class Report:
    table: pd.DataFrame
    files: dict[str, Path]
    run_id: str | None = None
    correlations: pd.DataFrame | None = None
    evaluation: pd.DataFrame | None = None  # each method per target, with intervals
    summary: pd.DataFrame | None = None     # each method over targets, intervals, verdicts
    assessment: Assessment | None = None    # the above, the ceiling, fidelity, without largest
    shift_lines: pd.DataFrame | None = None    # probit line per target, shift and metric
    shift_sources: pd.DataFrame | None = None  # drop and effective robustness per source
    scatter: dict[str, pd.DataFrame] | None = None  # per probe: pairs with their distance
    shift_models: pd.DataFrame | None = None   # per model and shifted set: both scores


def _beside_ceiling(corr: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """Each correlation row with the split-half Spearman ceiling of its scope (None without
    repeats): how high a probe's rho could go given the noise of the truth."""
    rows = repeat_results(folds)
    rows = rows[rows["source"] != rows["target"]].dropna(subset=["transferability"])
    ceiling = transferability_ceiling(rows) if len(rows) else {}
    corr = corr.copy()
    corr["rho_ceiling"] = [ceiling.get(str(scope)) for scope in corr["scope"]]
    return corr


def _correlations(inputs: AnalysisInputs, out_dir: Path, files: dict[str, Path]
                  ) -> tuple[pd.DataFrame | None, dict[str, pd.DataFrame] | None]:
    """Transferability vs each method's distance (minus its score): CSV, markdown and Fig. 4;
    the correlations (beside the noise ceiling of Spearman's rho) and the pairs each scored."""
    table, folds = inputs.pairs, inputs.folds
    transfers = table[table["kind"] == "transfer"][["source", "target", "transferability_mean"]]
    transfers = transfers.dropna()
    if not inputs.scores or transfers.empty:
        return None, None
    distances = {m: s.assign(distance=-s["score"]) for m, s in inputs.scores.items()}
    corr, joined = correlations(transfers, distances)
    if corr.empty:
        return None, joined
    corr = _beside_ceiling(corr, folds)
    files["correlations_csv"] = out_dir / "correlations.csv"
    files["correlations_markdown"] = out_dir / "correlations.md"
    files["fig4"] = out_dir / "fig4_transferability_vs_distance.png"
    corr.to_csv(files["correlations_csv"], index=False)
    files["correlations_markdown"].write_text(markdown_table(corr, digits=3))
    scatter_figure(joined).savefig(files["fig4"], dpi=120)
    return corr, joined



def _evaluation(inputs: AnalysisInputs, out_dir: Path, files: dict[str, Path],
                include_self: bool, extra: dict[str, pd.DataFrame]) -> Assessment | None:
    """Every probe, estimator and the learned ranker (``extra``) against the baselines, with
    intervals over targets, the permutation test against a random ranking and paired verdicts,
    beside the noise ceiling of each statistic; fidelity and the figures without the largest
    source: CSV and markdown."""
    results = inputs.results()
    if results.empty:
        return None
    a = assess(results, {**inputs.scores, **extra}, inputs.sizes, include_self=include_self)
    for name, frame in (("evaluation", a.per_target), ("evaluation_summary", a.summary),
                        ("noise_ceiling", a.ceiling), ("fidelity", a.fidelity),
                        ("without_largest", a.without_largest), ("spread", a.spread)):
        if frame is not None:
            files[f"{name}_csv"] = out_dir / f"{name}.csv"
            frame.to_csv(files[f"{name}_csv"], index=False)
    note = FOLDS_NOTE if inputs.repeats_are == "folds of one split" else ""
    files["evaluation_markdown"] = out_dir / "evaluation.md"
    files["evaluation_markdown"].write_text(evaluation_markdown(a, extra) + note)
    return a


def _shifts(folds: pd.DataFrame, out_dir: Path, files: dict[str, Path]
            ) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    """Seed 001 per target and shifted set: the probit line over all models (accuracy, the
    paper's metric, and AUC), each source's drop and effective robustness, the plot."""
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
        + markdown_table(lines, digits=3)
        + "\n## Per source: mean drop and residual from the line with its bootstrap 95 % "
        "interval (above = effectively robust; 'on the line' when the interval holds 0)"
        "\n\n" + markdown_table(sources, digits=3))
    for (target, shift), _ in models.groupby(["target", "shift"]):
        fig = shift_figure(models, lines[lines["metric"] == "accuracy"], target, shift)
        files[f"shift_fig_{target}_{shift}"] = out_dir / f"shift_{target}_{shift}.png"
        fig.savefig(files[f"shift_fig_{target}_{shift}"], dpi=120)
    return lines, sources, models



def compose_report(inputs: AnalysisInputs, out_dir: Path, *, include_self: bool = False,
                   extra_scores: dict[str, pd.DataFrame] | None = None) -> Report:
    """Write results.csv, results.md and fig3_auc.png and, where the inputs have method
    scores, correlations.csv/.md, the Fig. 4 scatter and the evaluation (evaluation*.csv/.md,
    every method against the baselines beside the noise ceiling), and the distribution shift
    where folds carry shifted metrics, into ``out_dir``. ``extra_scores``: further methods'
    score tables (the learned ranker's leave-one-target-out scores)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = inputs.pairs
    files = {"csv": out_dir / "results.csv", "markdown": out_dir / "results.md",
             "fig3": out_dir / "fig3_auc.png"}
    table.to_csv(files["csv"], index=False)
    files["markdown"].write_text(markdown_table(table))
    auc_bars_figure(table[table["kind"] != "freeze"]).savefig(files["fig3"], dpi=120)
    corr, scatter = _correlations(inputs, out_dir, files)
    a = _evaluation(inputs, out_dir, files, include_self, extra_scores or {})
    shift_lines, shift_sources, shift_models_ = _shifts(inputs.folds, out_dir, files)
    return Report(table=table, files=files, correlations=corr,
                  evaluation=a.per_target if a else None, summary=a.summary if a else None,
                  assessment=a, shift_lines=shift_lines, shift_sources=shift_sources,
                  scatter=scatter, shift_models=shift_models_)


def store_inputs(tracker: Tracker, suite: str, hashes: set[str] | None = None,
                 sizes: dict[str, float] | None = None) -> AnalysisInputs:
    """A suite's finished runs and logged probes as analysis inputs (probe matrices as
    scores: minus the distance)."""
    table, folds = results_tables(tracker, suite, hashes)
    probes = load_probe_matrices(tracker, suite)
    return AnalysisInputs(label=suite, pairs=table, folds=folds, scores=probe_scores(probes),
                          sizes=dict(sizes or {}))


def write_report(tracker: Tracker, suite: str, out_dir: Path,
                 hashes: set[str] | None = None, log_to_mlflow: bool = True,
                 sizes: dict[str, int] | None = None, include_self: bool = False,
                 html: HtmlContext | None = None,
                 extra_scores: dict[str, pd.DataFrame] | None = None) -> Report:
    """The report of ``suite`` from its finished runs (:func:`compose_report`), the HTML page
    and a ``report`` run in MLflow. ``sizes``: training images per source, for the
    static-size baseline."""
    inputs = store_inputs(tracker, suite, hashes, sizes)
    report = compose_report(inputs, out_dir, include_self=include_self,
                            extra_scores=extra_scores)
    if html is not None:
        report.files["html"] = html_report(report, suite, html, out_dir / "report.html")
    if not log_to_mlflow:
        return report
    return dataclasses.replace(report, run_id=log_report(tracker, suite, report))
