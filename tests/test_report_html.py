"""The HTML report page (without a browser: test_browser.py opens it in Chromium), the parent
runs' params, and the experiment tags that make MLflow 3's UI a comparison surface."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from bench_core.stores import tracking_target
from bench_core.tracking import MODEL_TRAINING, PAIRS_VIEW_STATE, Tracker, experiment_url
from benchmark import api
from benchmark.engine.runs import pair_params
from benchmark.analysis.results import COLUMNS
from benchmark.report.writer import Report
from benchmark.report.html import HtmlContext, dataset_cards, html_report
from registry.paths import BenchPaths
from registry.store import RegistryStore
from stores import store_client

EXP = "7"
BASE = "http://127.0.0.1:5000"


def _row(target, source, kind, auc, std, t=None, k=None, g=None, run=None) -> dict:
    return {"target": target, "source": source, "kind": kind, "k": k, "folds": 2, "repeats": 2,
            "auc_mean": auc, "auc_std": std, "transferability_mean": t,
            "transferability_std": None if t is None else 0.5, "generality_mean": g,
            "run_id": run or f"run-{source}-{target}-{kind}-{k}"}


def _report() -> Report:
    rows = [_row("a", "scratch", "scratch", 0.80, 0.01),
            _row("a", "s1", "transfer", 0.90, 0.01, 12.5),  # beyond the spread: helps
            _row("a", "s2", "transfer", 0.81, 0.02, 1.25),
            _row("a", "s1", "freeze", 0.85, 0.01, 6.25, k=1, g=1.06),
            _row("a", "s1", "freeze", 0.87, 0.01, 8.75, k=2, g=1.09),
            _row("b", "scratch", "scratch", 0.70, 0.05),
            _row("b", "s1", "transfer", 0.71, 0.05, 1.4),   # within the spread
            _row("b", "s2", "transfer", 0.60, 0.01, -14.3)]  # hurts, but s1 is best
    table = pd.DataFrame(rows, columns=COLUMNS)
    scatter = {"expert": pd.DataFrame({"source": ["s1", "s2", "s1", "s2"],
                                       "target": ["a", "a", "b", "b"],
                                       "transferability_mean": [12.5, 1.25, 1.4, -14.3],
                                       "distance": [0.1, 0.5, 0.3, 0.9]})}
    corr = pd.DataFrame([{"probe": "expert", "scope": "pooled", "n": 4, "spearman_rho": -0.8,
                          "spearman_p": 0.2, "kendall_tau": -0.67, "pearson_r": -0.9,
                          "paper_r": 0.24}])
    return Report(table=table, files={}, correlations=corr, scatter=scatter)


def _context(records=None, datasets=("s1", "s2", "a", "b")) -> HtmlContext:
    return HtmlContext(records=records or {}, cards={}, models=[], mlflow_url=BASE,
                       experiment_id=EXP, tracking_uri="sqlite:///x/mlflow.db", commit="abc123",
                       datasets=list(datasets))


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parse(page: str) -> list[tuple[str, dict]]:
    parser = _Collect()
    parser.feed(page)
    return parser.tags


def test_page_is_self_contained_and_links_every_pair(tmp_path):
    path = html_report(_report(), "demo", _context(), tmp_path / "report.html")
    page = path.read_text()
    tags = _parse(page)
    assert not [a for t, a in tags if t == "script" and a.get("src")]
    assert not [a for t, a in tags if t == "link" and a.get("rel") == "stylesheet"]
    images = [a for t, a in tags if t == "img"]
    assert {a["alt"] for a in images} == {"AUC per target with error bars",
                                          "transferability against probe distance",
                                          "generality against k"}
    for a in images:  # every figure is an embedded, decodable PNG
        assert a["src"].startswith("data:image/png;base64,")
        png = Image.open(io.BytesIO(base64.b64decode(a["src"].split(",", 1)[1])))
        assert png.format == "PNG" and png.size[0] > 200
    links = [a["href"] for t, a in tags if t == "a" and "/runs/" in a.get("href", "")]
    for run_id in _report().table["run_id"]:
        assert experiment_url(BASE, EXP, run_id) in links
    assert len(re.findall(r"<tr>", page.split('id="table-results"')[1].split("</table>")[0])) \
        == 1 + len(_report().table)  # header + one row per pair
    assert not list(tmp_path.glob(".report*"))  # the temporary file was renamed


def test_best_source_and_its_verdict_against_the_spread(tmp_path):
    page = html_report(_report(), "demo", _context(), tmp_path / "r.html").read_text()
    best = page.split('id="table-best"')[1].split("</table>")[0]
    rows = [re.sub(r"<[^>]+>", "|", r) for r in best.split("<tr>")[2:]]
    cells = [[c.strip() for c in r.split("|") if c.strip()] for r in rows]
    # a: s1 0.90 vs scratch 0.80, gain 0.10 > hypot(0.01, 0.01); b: s1 0.71 vs 0.70, gain
    # 0.01 < hypot(0.05, 0.05)
    assert cells[0][:6] == ["a", "s1", "0.9000 ± 0.0100", "0.8000", "+0.1000", "helps"]
    assert cells[1][:6] == ["b", "s1", "0.7100 ± 0.0500", "0.7000", "+0.0100", "within spread"]
    assert cells[0][-1] == "s2"  # runner-up


def test_dataset_card_shows_real_sample_images(cli, paths, tmp_path):
    assert cli("add-dataset", "digits").exit_code == 0
    record = RegistryStore(paths.registry_db).get("digits")
    cards = dataset_cards(["digits", "imagenet"], HtmlContext(
        records={"digits": record},
        cards={"imagenet": {"description": "weights only", "license": "custom"}},
        models=[], mlflow_url=BASE, experiment_id=EXP, tracking_uri="u"))
    digits, imagenet = cards
    facts = dict(digits["facts"])
    assert facts["classes"] == 10 and facts["images"] == 1797 and "license" in facts
    grid = Image.open(io.BytesIO(base64.b64decode(digits["grid"].split(",", 1)[1])))
    assert grid.size[1] > grid.size[0] * 0.8  # ten rows of six digits: taller than wide-ish
    pixels = np.asarray(grid.convert("L"))
    assert pixels.std() > 20  # real pictures, not a blank canvas
    assert imagenet["grid"] is None and not imagenet["registered"]


def _suite(tmp_path: Path) -> Path:
    suite = {"name": "params", "architecture": {"name": "resnet10t"}, "folds": {"n": 2},
             "pretrain_defaults": {"image_size": [16, 16], "epochs": 1},
             "finetune_defaults": {"image_size": [16, 16], "epochs": 1,
                                   "augmentation": {"hflip": False}},
             "sources": [{"name": "digits"}],
             "targets": [{"name": "lfw-faces"},
                         {"name": "digits-noise", "finetune": {"augmentation": {"hflip": True}}}],
             "generality": {"ks": [2], "targets": ["lfw-faces"]}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_parent_params_are_what_differs_between_pairs(paths, tmp_path):
    plan = api.plan_suite(_suite(tmp_path), paths)
    by = {(p.source, p.target, p.kind): pair_params(plan, p) for p in plan.pairs}
    transfer = by[("digits", "lfw-faces", "transfer")]
    assert set(transfer) == {"source", "target", "kind", "arch", "config_hash",
                             "train.augmentation.hflip"}
    assert transfer["train.augmentation.hflip"] == "False"
    assert by[("digits", "digits-noise", "transfer")]["train.augmentation.hflip"] == "True"
    assert by[("digits", "lfw-faces", "freeze")]["k"] == "2"
    pair = next(p for p in plan.pairs if p.kind == "transfer")
    assert transfer["config_hash"] == pair.config_hash and transfer["arch"] == "resnet10t"


def test_suite_experiment_opens_as_model_training_with_the_pairs_view(bench_home):
    target = tracking_target(BenchPaths(bench_home), None, "transfer-bench/tagged")
    tracker = Tracker(target)
    tags = tracker.client.get_experiment(tracker.experiment_id).tags
    assert tags["mlflow.experimentKind"] == MODEL_TRAINING
    assert json.loads(tags["mlflow.sharedViewState.pairs"]) == PAIRS_VIEW_STATE

    client = store_client(bench_home)  # an experiment made before these tags existed
    old = client.create_experiment("transfer-bench/old")
    client.set_experiment_tag(old, "mlflow.note.content", "my own notes")
    Tracker(tracking_target(BenchPaths(bench_home), None, "transfer-bench/old"))
    tags = client.get_experiment(old).tags
    assert tags["mlflow.experimentKind"] == MODEL_TRAINING
    assert "mlflow.sharedViewState.pairs" in tags
    assert tags["mlflow.note.content"] == "my own notes"  # a user's description is kept


@pytest.mark.parametrize("run_id", [None, "abc"])
def test_experiment_url_opens_the_model_training_ui(run_id):
    url = experiment_url("http://host:5000/", "3", run_id)
    assert url.startswith("http://host:5000/#/experiments/3/runs")
    assert "workflowType=machine_learning" in url
    assert ("viewStateShareKey=pairs" in url) == (run_id is None)
