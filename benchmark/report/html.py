"""`bench report --html`: one self-contained HTML page per suite (figures embedded as PNG data
URIs, styles and the table-sorting script inline; opens with no network).

Sections: the best source per target, the results table (sortable, filterable by target, each
row linked to its MLflow run), AUC per target with error bars, transferability against every
probe's distance with the correlations and the probes against the baselines, the generality
sweep, the distribution shift, the dataset cards with sample images, the published models."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from bench_core.tracking import experiment_url
from benchmark.report.markdown import ceiling_table, methods_table
from benchmark.report.figures import (auc_per_target_figure, generality_figure, png_data_uri,
                                      probe_scatter_figure, sample_grid_figure, shift_figure)
from registry.files import atomic_write
from registry.store import DatasetRecord

TEMPLATE = Path(__file__).with_name("templates") / "report.html.j2"


@dataclass(frozen=True)
class Cell:
    text: str
    sort: str | float | None = None  # the value the column sorts by (numbers as numbers)
    href: str | None = None
    css: str = ""


@dataclass(frozen=True)
class TableView:
    """A table as the page shows it: headers, cells, an id; ``target`` column index for the
    target filter, if any."""

    id: str
    headers: list[str]
    rows: list[list[Cell]]
    target_column: int | None = None
    titles: dict[str, str] = field(default_factory=dict)  # header -> tooltip


@dataclass(frozen=True, kw_only=True)
class HtmlContext:
    """What the page shows besides the report's tables: the datasets (registered records, or
    catalog cards for weight-only sources), the published models, where the MLflow UI is."""

    records: dict[str, DatasetRecord]
    cards: dict[str, dict[str, Any]]
    models: list[dict[str, Any]]
    mlflow_url: str  # the MLflow UI's base address (`bench ui` serves http://127.0.0.1:5000)
    experiment_id: str
    tracking_uri: str
    commit: str = "unknown"
    datasets: list[str] | None = None  # in suite order; None: the results table's names


def _num(value: Any, digits: int = 4, signed: bool = False) -> Cell:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return Cell("", None)
    value = float(value)
    return Cell(f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}", value)


def _pm(mean: Any, std: Any, digits: int = 4, signed: bool = False) -> Cell:
    cell = _num(mean, digits, signed)
    if cell.sort is None or std is None or pd.isna(std):
        return cell
    return Cell(f"{cell.text} ± {float(std):.{digits}f}", cell.sort)


def _link(ctx: HtmlContext, run_id: str | None = None) -> str | None:
    """The MLflow UI's address of the experiment (or of one run); None where the page has no
    MLflow UI behind it (a result set's report)."""
    return experiment_url(ctx.mlflow_url, ctx.experiment_id, run_id) if ctx.mlflow_url else None


def results_view(table: pd.DataFrame, ctx: HtmlContext) -> TableView:
    """Every pair: target, source, kind, k, folds x repeats, AUC, Eq. 1, generality, run link;
    the best transfer source of each target marked."""
    best = _best_sources(table)
    rows = []
    for _, r in table.iterrows():
        is_best = r["kind"] == "transfer" and best.get(r["target"]) == r["source"]
        link = _link(ctx, r["run_id"]) if r["run_id"] else None
        rows.append([Cell(r["target"], r["target"]),
                     Cell(r["source"], r["source"], css="best" if is_best else ""),
                     Cell(r["kind"], r["kind"]),
                     Cell("" if pd.isna(r["k"]) else str(int(r["k"])),
                          None if pd.isna(r["k"]) else float(r["k"])),
                     Cell(f"{int(r['folds'])} x {int(r['repeats'])}",
                          float(r["folds"] * r["repeats"])),
                     _pm(r["auc_mean"], r["auc_std"]),
                     _pm(r["transferability_mean"], r["transferability_std"], 2, signed=True),
                     _num(r["generality_mean"], 3),
                     Cell("run" if link else "", None, href=link)])
    headers = ["target", "source", "kind", "k", "folds x repeats", "test AUC",
               "transferability (%)", "generality", "MLflow"]
    titles = {"test AUC": "mean ± std over folds and repeats",
              "transferability (%)": "Eq. 1: (AUC - baseline AUC) / baseline AUC x 100, per "
                                     "fold, mean ± std",
              "generality": "Venkatesan et al. 2016: AUC with all but the last k layers frozen / scratch AUC"}
    return TableView("results", headers, rows, target_column=0, titles=titles)


def _best_sources(table: pd.DataFrame) -> dict[str, str]:
    transfer = table[(table["kind"] == "transfer") & table["auc_mean"].notna()]
    return {t: g.sort_values("auc_mean", ascending=False)["source"].iloc[0]
            for t, g in transfer.groupby("target")}


def best_view(table: pd.DataFrame, ctx: HtmlContext) -> TableView:
    """Per target: the best source by mean AUC, its margin over scratch and the runner-up,
    and whether the margin exceeds the spread (one std of both)."""
    rows = []
    for target, g in table[table["kind"] != "freeze"].groupby("target", sort=False):
        transfer = g[g["kind"] == "transfer"].sort_values("auc_mean", ascending=False)
        scratch = g[g["kind"] == "scratch"]
        if transfer.empty:
            continue
        top = transfer.iloc[0]
        base = scratch.iloc[0] if len(scratch) else None
        margin = None if base is None else top["auc_mean"] - base["auc_mean"]
        spread = None if base is None else float(np.hypot(top["auc_std"] or 0,
                                                          base["auc_std"] or 0))
        verdict = "" if margin is None else (
            "helps" if margin > spread else "hurts" if margin < -spread else "within spread")
        second = transfer.iloc[1]["source"] if len(transfer) > 1 else ""
        rows.append([Cell(target, target), Cell(top["source"], top["source"], css="best",
                                                href=_link(ctx, top["run_id"])),
                     _pm(top["auc_mean"], top["auc_std"]),
                     _num(None if base is None else base["auc_mean"]),
                     _num(margin, 4, signed=True), Cell(verdict, verdict),
                     _pm(top["transferability_mean"], top["transferability_std"], 2, True),
                     Cell(second, second)])
    headers = ["target", "best source", "its AUC", "scratch AUC", "AUC gain", "vs spread",
               "transferability (%)", "runner-up"]
    return TableView("best", headers, rows, target_column=0,
                     titles={"vs spread": "gain beyond one combined std of the two AUCs?"})


COUNTS = ("n", "n_targets", "n_sources", "fold", "repeat", "n_repeats", "models")
LABELS = {"weighted_tau": "weighted tau", "kendall_tau": "Kendall tau",
          "spearman_rho": "Spearman rho", "spearman_p": "p", "pearson_r": "Pearson r",
          "paper_r": "paper's r", "top1_regret": "top-1 regret", "noise_ceiling": "noise ceiling",
          "rho_ceiling": "rho ceiling", "n_targets": "targets",
          "effective_robustness": "effective robustness"}
TITLES = {"weighted tau": "mean over targets with its 95 % bootstrap-t interval over targets "
                          "(for random: the permutation null's mean and central 95 %)",
          "vs random (permutation)": "exact permutation test within each target, combined "
                                     "over targets: p that a random ranking does as well",
          "vs best-on-average (weighted tau)": "paired difference to ranking by the mean AUC "
                                               "over the other targets, its interval, targets "
                                               "won/tied/lost",
          "vs static-size (weighted tau)": "paired difference to ranking by source size (the "
                                           "same list for every target)",
          "fidelity": "Pearson r of score gaps against AUC gaps over pairs of sources",
          "without the largest source": "weighted tau with the largest source removed from "
                                        "every target's candidates",
          "at the noise ceiling": "weighted tau at or above the weighted-tau ceiling: the "
                                  "truth's noise cannot tell the method from a perfect one",
          "split-half tau": "Kendall tau between the means of two halves of the repeats, over "
                            "every distinct split",
          "top-1 regret": "AUC of the best source minus AUC of the method's first choice",
          "rho ceiling": "split-half Spearman rho of the Eq. 1 transferability with itself: "
                         "the most a probe's rho can be expected to reach"}


def frame_view(frame: pd.DataFrame, id_: str, columns: list[str], digits: int = 3,
               target_column: str | None = None) -> TableView:
    """A plain sortable view of ``frame``'s ``columns`` (numbers rounded to ``digits``),
    headers in words (:data:`LABELS`)."""
    cols = [c for c in columns if c in frame.columns]
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, (bool, np.bool_)):
                cells.append(Cell("yes" if v else "no", str(v)))
            elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                cells.append(_num(v, 0 if c in COUNTS else digits))
            elif v is None or (not isinstance(v, str) and pd.isna(v)):
                cells.append(Cell("", None))
            else:
                cells.append(Cell(str(v), str(v)))
        rows.append(cells)
    index = cols.index(target_column) if target_column in cols else None
    headers = [LABELS.get(c, c) for c in cols]
    return TableView(id_, headers, rows, target_column=index,
                     titles={h: TITLES[h] for h in headers if h in TITLES})


def text_view(frame: pd.DataFrame, id_: str) -> TableView:
    """A view of a table already in words (``0.40 [0.12, 0.66]``), each cell sorting by the
    number it starts with."""
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for v in r:
            text = "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
            head = text.split(" ", 1)[0]
            try:
                sort: str | float | None = float(head)
            except ValueError:
                sort = text or None
            cells.append(Cell(text, sort))
        rows.append(cells)
    headers = [str(c) for c in frame.columns]
    return TableView(id_, headers, rows, titles={h: TITLES[h] for h in headers if h in TITLES})


def render(context: dict[str, Any]) -> str:
    """The page from the Jinja2 template (autoescaped)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)))
    return env.get_template(TEMPLATE.name).render(**context)


def write_page(path: Path, page: str) -> Path:
    """Atomically, readable by others like any file the user writes (the report is shared)."""
    def write(tmp: Path) -> None:
        tmp.write_text(page, encoding="utf-8")
        tmp.chmod(0o644)  # mkstemp made it 0600

    atomic_write(path, write)
    return path


def header(suite: str, ctx: HtmlContext) -> dict[str, Any]:
    return {"suite": suite, "made": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "commit": ctx.commit[:12], "tracking_uri": ctx.tracking_uri,
            "experiment_link": _link(ctx), "mlflow_url": ctx.mlflow_url}


def dataset_cards(names: list[str], ctx: HtmlContext) -> list[dict[str, Any]]:
    """Each dataset's card facts and, when registered here, a grid of its sample images."""
    out = []
    for name in names:
        record = ctx.records.get(name)
        card = record.card if record is not None else ctx.cards.get(name)
        if card is None:
            continue
        derived = card.get("derived_from") or {}
        facts = [("origin", card.get("origin")), ("modality", card.get("modality")),
                 ("task", card.get("task")),
                 ("classes", len(card.get("classes") or []) or None),
                 ("images", record.n_samples if record is not None else card.get("n_samples")),
                 ("derived from", derived.get("parent")), ("license", card.get("license")),
                 ("citation", card.get("citation"))]
        grid = None
        if record is not None:
            loaded = _sample_images(record)
            if loaded is not None:
                grid = png_data_uri(sample_grid_figure(*loaded, list(record.classes)), dpi=90)
        out.append({"name": name, "description": card.get("description", ""),
                    "derived": derived.get("description"), "homepage": card.get("homepage"),
                    "facts": [(k, v) for k, v in facts if v not in (None, "")], "grid": grid,
                    "registered": record is not None})
    return out


def _sample_images(record: DatasetRecord) -> tuple[np.ndarray, np.ndarray] | None:
    """The smallest cached images (memory-mapped) and the labels; None when not cached here."""
    files = [f for f in record.files if f.role.startswith("images ") and f.shape]
    labels = record.file_path("labels")
    if not files or labels is None:
        return None
    smallest = min(files, key=lambda f: f.shape[2] * f.shape[3])
    if not (Path(smallest.path).is_file() and Path(labels).is_file()):
        return None
    return np.load(smallest.path, mmap_mode="r"), np.load(labels)


def models_view(models: list[dict[str, Any]], suite: str) -> TableView:
    """The suite's published models: registry name and version, aliases, source, AUC per
    target, the folder timm loads offline."""
    rows = []
    for m in models:
        if m.get("suite") != suite:
            continue
        aucs = ", ".join(f"{k.split('.', 1)[1]} {v:.4f}" for k, v in sorted(m["metrics"].items())
                         if k.startswith("auc_mean."))
        rows.append([Cell(m["name"], m["name"]), Cell(str(m["version"]), float(m["version"])),
                     Cell(", ".join("@" + a for a in m["aliases"])), Cell(m["source"] or ""),
                     Cell(m["arch"] or ""), Cell(aucs), Cell(m["uri"]),
                     Cell(m["folder"] or "")])
    return TableView("models", ["model", "version", "aliases", "source", "arch",
                                "AUC per target", "load with", "folder"], rows)


def figures(report, table: pd.DataFrame) -> dict[str, Any]:
    """The embedded figures: AUC per target, probe scatter, generality, shift plots."""
    out: dict[str, Any] = {"auc": png_data_uri(auc_per_target_figure(table)), "probes": None}
    if report.scatter and any(not d.empty for d in report.scatter.values()):
        out["probes"] = png_data_uri(probe_scatter_figure(report.scatter, report.correlations))
    freeze = table[(table["kind"] == "freeze") & table["generality_mean"].notna()]
    out["generality"] = png_data_uri(generality_figure(table)) if len(freeze) else None
    out["shifts"] = []
    if report.shift_models is not None and report.shift_lines is not None:
        lines = report.shift_lines[report.shift_lines["metric"] == "accuracy"]
        for (target, shift), _ in report.shift_models.groupby(["target", "shift"]):
            out["shifts"].append({"title": f"{target} -> {shift}", "png": png_data_uri(
                shift_figure(report.shift_models, lines, target, shift))})
    return out


def tables(report) -> dict[str, TableView | None]:
    """The correlation, evaluation, generality and shift tables as sortable views."""
    out: dict[str, TableView | None] = {"correlations": None, "evaluation": None,
                                        "ceiling": None, "shift_lines": None,
                                        "shift_sources": None}
    if report.correlations is not None:
        out["correlations"] = frame_view(
            report.correlations, "correlations",
            ["probe", "scope", "n", "spearman_rho", "rho_ceiling", "spearman_p", "kendall_tau",
             "pearson_r", "paper_r"], target_column="scope")
    if report.assessment is not None:
        out["evaluation"] = text_view(methods_table(report.assessment), "evaluation")
        out["ceiling"] = text_view(ceiling_table(report.assessment), "ceiling")
    if report.shift_lines is not None:
        out["shift_lines"] = frame_view(report.shift_lines, "shift-lines",
                                        ["target", "shift", "metric", "n", "u", "u_low",
                                         "u_high", "v", "v_low", "v_high", "r"],
                                        target_column="target")
        out["shift_sources"] = frame_view(report.shift_sources, "shift-sources",
                                          [c for c in report.shift_sources.columns],
                                          target_column="target")
    return out


def html_report(report, suite: str, ctx: HtmlContext, path: Path) -> Path:
    """Write the suite's page to ``path`` (atomically) and return it."""
    table = report.table
    datasets = ctx.datasets or [n for n in dict.fromkeys([*table["source"], *table["target"]])
                                if n != "scratch"]
    page = render({**header(suite, ctx), "best": best_view(table, ctx),
                   "results": results_view(table, ctx), "figures": figures(report, table),
                   "tables": tables(report), "targets": list(dict.fromkeys(table["target"])),
                   "sources": sorted(set(table["source"])),
                   "datasets": dataset_cards(datasets, ctx),
                   "models": models_view(ctx.models, suite)})
    return write_page(path, page)
