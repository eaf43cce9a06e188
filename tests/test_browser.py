"""What a person sees, in a real headless browser (Debian's chromium driven by Playwright),
after a tiny `bench run`: the HTML report renders with no console error and shows every source
of each target, sorts and filters; the MLflow UI started by `bench ui` opens the suite's
experiment as model training and shows the pairs with the params and metrics a comparison
needs. Screenshots are saved to test-artifacts/ (BENCH_TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from pathlib import Path

import pytest

from browser import artifacts_dir, browser_page, chromium_path
from conftest import served
from stores import store_client
from test_run import TINY, write_suite

SUITE = {**TINY, "name": "browser",
         "pretrain_defaults": {**TINY["pretrain_defaults"], "epochs": 1},
         "finetune_defaults": {**TINY["finetune_defaults"], "epochs": 1},
         "sources": [{"name": "digits"}, {"name": "font-letters"}],
         "targets": [{"name": "lfw-faces", "shifts": [{"transform": "blur", "level": 1.0}]},
                     {"name": "digits-noise", "max_samples": 200}],
         "generality": {"ks": [2], "sources": ["digits"], "targets": ["lfw-faces"]}}
SOURCES = {"digits", "font-letters", "scratch"}
pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict:
    """A finished tiny suite: its BENCH_HOME, the `bench run --json` document, the store."""
    chromium_path()  # skip (or fail in CI) before spending a minute on the run
    root = tmp_path_factory.mktemp("browser")
    home = root / "home"
    suite = write_suite(root, **SUITE)
    env = {**os.environ, "BENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    from typer.testing import CliRunner

    from benchmark.cli import app

    done = CliRunner().invoke(app, ["run", "--suite", str(suite), "--json"],
                              env={"BENCH_HOME": str(home), "MLFLOW_TRACKING_URI": None})
    assert done.exit_code == 0, done.stderr[-3000:]
    return {"home": home, "doc": json.loads(done.stdout), "root": root, "env": env}


def _bench() -> str:
    return str(Path(sys.executable).with_name("bench"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _column(page, table: str, header: str) -> list[str]:
    """The visible cells of column ``header`` of table ``table`` (by the sort key if any)."""
    return page.evaluate(
        """([table, header]) => {
            const t = document.getElementById(table);
            const col = [...t.tHead.rows[0].cells].findIndex(c => c.textContent.trim() === header);
            return [...t.tBodies[0].rows].filter(r => r.style.display !== 'none')
                .map(r => r.cells[col].getAttribute('data-sort') ?? r.cells[col].textContent);
        }""", [table, header])


def test_html_report_renders_every_source_and_sorts(finished):
    html = Path(finished["doc"]["report"]["html"])
    assert html.is_file()
    client = store_client(finished["home"])
    exp = client.get_experiment_by_name("transfer-bench/browser")
    pairs = {r.info.run_id for r in client.search_runs([exp.experiment_id],
                                                       "tags.level = 'pair'")}
    with browser_page() as (page, log):
        page.goto(html.as_uri(), wait_until="load")
        page.screenshot(path=str(artifacts_dir() / "report-page.png"), full_page=True)
        assert log.errors == []
        assert page.locator("#suite-name").inner_text() == "browser"
        broken = page.evaluate("[...document.images].filter(i => !(i.complete && "
                               "i.naturalWidth > 0)).map(i => i.alt)")
        assert broken == []
        alts = page.evaluate("[...document.images].map(i => i.alt)")
        for alt in ("AUC per target with error bars", "transferability against probe distance",
                    "generality against k", "shift lfw-faces -> blur-1",
                    "sample images of digits", "sample images of lfw-faces"):
            assert alt in alts, (alt, alts)
        rows = page.evaluate("[...document.querySelectorAll('#table-results tbody tr')]"
                             ".map(r => [...r.cells].map(c => c.textContent.trim()))")
        for target in ("lfw-faces", "digits-noise"):
            assert {r[1] for r in rows if r[0] == target and r[2] != "freeze"} == SOURCES
        links = page.evaluate("[...document.querySelectorAll('#table-results a')]"
                              ".map(a => a.href)")
        assert {re.search(r"/runs/([0-9a-f]+)", link).group(1) for link in links} == pairs
        assert all(f"#/experiments/{exp.experiment_id}/runs/" in link for link in links)

        page.click("#table-results th:text-is('test AUC')")
        aucs = [float(v) for v in _column(page, "table-results", "test AUC")]
        assert aucs == sorted(aucs)
        page.click("#table-results th:text-is('test AUC')")
        assert [float(v) for v in _column(page, "table-results", "test AUC")] == \
            sorted(aucs, reverse=True)
        page.select_option("#target-filter", "digits-noise")
        assert set(_column(page, "table-results", "target")) == {"digits-noise"}
        page.screenshot(path=str(artifacts_dir() / "report-filtered.png"))
        assert log.errors == []


def _ui_url(log: Path, timeout: float = 30.0) -> str:
    """The suite's experiment URL that `bench ui` printed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = re.search(r"suite browser: (http://\S+)", log.read_text(errors="replace"))
        if found:
            return found.group(1)
        time.sleep(0.5)
    raise AssertionError(f"bench ui printed no experiment URL:\n{log.read_text()[-2000:]}")


def test_mlflow_ui_shows_the_pairs_as_model_training(finished, tmp_path):
    port = _free_port()
    log = tmp_path / "ui.log"
    client = store_client(finished["home"])
    exp = client.get_experiment_by_name("transfer-bench/browser")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    pairs = client.search_runs([exp.experiment_id], "tags.level = 'pair'")
    with served([_bench(), "ui", "--suite", "browser", "--port", str(port)],
                f"http://127.0.0.1:{port}", finished["env"], log):
        url = _ui_url(log)
        assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}/runs?")
        with browser_page(2600, 1000) as (page, _):  # wide: the grid renders visible columns
            page.goto(url, wait_until="load")
            page.get_by_text("digits -> lfw-faces", exact=True).first.wait_for(timeout=90_000)
            time.sleep(2)  # let the grid settle before the picture
            page.screenshot(path=str(artifacts_dir() / "mlflow-experiment.png"))
            body = page.inner_text("body")
            assert "Judges" not in body and "Token Usage" not in body  # not the GenAI view
            for name in ("digits -> lfw-faces", "font-letters -> lfw-faces",
                         "scratch -> lfw-faces", "digits -> digits-noise",
                         "Group: lfw-faces", "Group: digits-noise"):
                assert name in body, name
            assert "pretrain: digits" not in body  # the view shows the pairs only
            headers = [h.strip() for h in
                       page.locator("[role=columnheader]").all_inner_texts()]
            for column in ("test_auc_mean", "test_auc_std", "transferability_mean", "source",
                           "target", "kind", "config_hash"):
                assert column in headers, (column, headers)

            ids = json.dumps([r.info.run_id for r in pairs
                              if r.data.tags["target"] == "lfw-faces"
                              and r.data.tags["kind"] != "freeze"])
            page.goto(f"http://127.0.0.1:{port}/#/compare-runs?runs={ids}"
                      f"&experiments={json.dumps([exp.experiment_id])}"
                      "&workflowType=machine_learning", wait_until="load")
            page.get_by_text("test_auc_mean").first.wait_for(timeout=90_000)
            time.sleep(2)
            page.screenshot(path=str(artifacts_dir() / "mlflow-compare.png"), full_page=True)
            compare = page.inner_text("body")
            for text in ("source", "target", "config_hash", "test_auc_mean",
                         "transferability_mean", "font-letters", "scratch"):
                assert text in compare, text
            assert "train.optimizer.lr" not in compare  # shared settings stay on the folds

