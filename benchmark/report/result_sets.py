"""``bench report --results NAME``: the report of an imported result set (a transfer table), as a
suite's: the results table and Fig. 3, the correlations of every score column with
transferability (Fig. 4 of van den Brandt et al. 2021), every method and the baselines with
intervals, the noise ceiling from the repeats (or from the folds, when the table's repeats are
folds of one split, which the report then says), and the HTML page. The learned ranker learns
from the table's own pairs, each target's scores from a model that never saw it. Nothing is
logged to MLflow: a result set is not a run of this store."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from benchmark.analysis.evaluation import LEARNED
from benchmark.analysis.meta_dataset import learned_scores
from benchmark.analysis.tables import result_set_inputs
from benchmark.analysis.transfer_data import AnalysisInputs, learning_pairs
from benchmark.report.html import HtmlContext, html_report
from benchmark.report.writer import Report, compose_report
from registry.catalog import Catalog
from registry.paths import BenchPaths
from registry.result_store import ResultStore
from registry.store import RegistryStore

def html_context(name: str, inputs: AnalysisInputs, paths: BenchPaths, catalog: Catalog,
                 version: str) -> HtmlContext:
    """The page's context for a result set: the registry's records and cards where names
    match; no MLflow links (the rows are no runs of this store)."""
    store = RegistryStore(paths.registry_db) if paths.registry_db.is_file() else None
    names = sorted({*inputs.pairs["source"], *inputs.pairs["target"]} - {"scratch"})
    records = {n: r for n in names if store and (r := store.get(n)) is not None}
    cards = {n: c.model_dump(mode="json") for n, c in catalog.cards.items()}
    return HtmlContext(records=records, cards=cards, models=[], mlflow_url="",
                       experiment_id="", tracking_uri=f"result set {name} ({version[:19]}...)",
                       datasets=names)


def build_results_report(name: str, paths: BenchPaths, out: Path | None = None, *,
                         include_self: bool = False, html: bool = True) -> Report:
    """The report of result set ``name`` into ``out`` (default BENCH_HOME/reports/results-NAME)."""
    catalog = Catalog.load()
    record = ResultStore(paths).get(name)
    inputs = result_set_inputs(name, paths, catalog)
    with contextlib.redirect_stdout(sys.stderr):
        learned = learned_scores(learning_pairs(inputs), name)
    out = out or paths.home / "reports" / f"results-{name}"
    report = compose_report(inputs, out, include_self=include_self,
                            extra_scores={LEARNED: learned})
    if html:
        context = html_context(name, inputs, paths, catalog, record.version)
        report.files["html"] = html_report(report, f"results:{name}", context,
                                           out / "report.html")
    return report
