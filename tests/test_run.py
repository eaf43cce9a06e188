"""`bench run` end to end on a tiny suite: MLflow contents read back, resume after kill -9,
report files; and the paper's plan on real data layouts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

import formats
from stores import store_client

TINY = {
    "name": "tiny",
    "architecture": {"name": "resnet10t", "drop_rate": 0.5},
    "folds": {"n": 2, "val_fraction": 0.5, "seed": 0},
    "pretrain_defaults": {"image_size": [16, 16], "batch_size": 64, "epochs": 2},
    "finetune_defaults": {"image_size": [16, 16], "batch_size": 32, "epochs": 2},
    "sources": [{"name": "digits"}],
    "targets": [{"name": "lfw-faces"}],
    "generality": {"ks": [2]},
    "probes": [{"method": "expert"}, {"method": "metafeatures"}],
}


def write_suite(tmp_path: Path, **changes) -> Path:
    data = {**TINY, **changes}
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def client(home: Path) -> MlflowClient:
    return store_client(home)


def runs(home: Path, suite: str = "tiny"):
    c = client(home)
    exp = c.get_experiment_by_name(f"transfer-bench/{suite}")
    return c, exp, c.search_runs([exp.experiment_id], max_results=1000)


@pytest.mark.slow
def test_tiny_suite_end_to_end(cli, tmp_path, bench_home):
    probes = TINY["probes"] + [{"method": "logme", "options": {"suite": str(tmp_path / "tiny.yaml")}}]
    res = cli("run", "--suite", write_suite(tmp_path, probes=probes), "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert "━" not in res.stderr  # stderr is no terminal here: log lines, no bars
    assert "[1/" in res.stderr and "pretrain digits done (" in res.stderr
    c, exp, all_runs = runs(bench_home)
    by_level = {lvl: [r for r in all_runs if r.data.tags.get("level") == lvl]
                for lvl in ("pretrain", "pair", "fold", "report", "probe")}
    assert sorted(r.data.tags["probe"] for r in by_level["probe"]) == ["expert", "logme",
                                                                       "metafeatures"]
    assert len(by_level["pretrain"]) == 1 and len(by_level["report"]) == 1
    assert sorted((r.data.tags["source"], r.data.tags["kind"]) for r in by_level["pair"]) == \
        [("digits", "freeze"), ("digits", "transfer"), ("scratch", "scratch")]
    assert len(by_level["fold"]) == 6
    parents = {r.info.run_id for r in by_level["pair"]}
    assert {r.data.tags["mlflow.parentRunId"] for r in by_level["fold"]} == parents
    assert all(r.info.status == "FINISHED" for r in all_runs)

    fold = next(r for r in by_level["fold"] if r.data.tags["source"] == "digits"
                and r.data.tags["kind"] == "transfer")
    assert fold.data.params["fold"] in ("0", "1") and fold.data.tags["target"] == "lfw-faces"
    assert c.list_artifacts(fold.info.run_id, "config")[0].path == "config/suite.yaml"
    history = c.get_metric_history(fold.info.run_id, "val_auc")
    assert sorted(m.step for m in history) == [0, 1]
    for key in ("test_auc", "test_accuracy", "transferability", "best_epoch", "train_images_per_s"):
        assert key in fold.data.metrics
    scratch_fold = next(r for r in by_level["fold"] if r.data.tags["kind"] == "scratch"
                        and r.data.tags["fold"] == fold.data.tags["fold"])
    expected_t = (fold.data.metrics["test_auc"] - scratch_fold.data.metrics["test_auc"]) \
        / scratch_fold.data.metrics["test_auc"] * 100
    assert fold.data.metrics["transferability"] == pytest.approx(expected_t)

    pair = next(r for r in by_level["pair"] if r.data.tags["kind"] == "transfer")
    assert pair.data.params["arch"] == "resnet10t" and pair.data.params["kind"] == "transfer"
    assert pair.data.params["source"] == "digits" and "train.optimizer.lr" not in pair.data.params
    assert fold.data.params["train.optimizer.lr"] == "0.001"  # the full settings: on the folds
    assert fold.data.params["arch.name"] == "resnet10t"
    for tag in ("suite", "source", "target", "config_hash", "git_commit"):
        assert tag in pair.data.tags
    artifacts = {a.path for a in c.list_artifacts(pair.info.run_id)}
    assert {"config", "curves.png"} <= artifacts
    assert c.list_artifacts(pair.info.run_id, "config")[0].path == "config/suite.yaml"
    assert pair.inputs.dataset_inputs[0].dataset.name == "lfw-faces"
    pre = by_level["pretrain"][0]
    assert any(k.startswith("system/cpu") for k in pre.data.metrics)
    assert {a.path for a in c.list_artifacts(pre.info.run_id, "weights")}

    row = next(r for r in doc["results"] if r["kind"] == "transfer")
    assert row["auc_mean"] == pytest.approx(pair.data.metrics["test_auc_mean"])
    for key in ("csv", "markdown", "fig3", "correlations_csv", "fig4"):
        assert Path(doc["report"][key]).is_file()
    pooled = [c for c in doc["correlations"] if c["scope"] == "pooled"]
    assert {c["probe"] for c in pooled} == {"expert", "metafeatures", "logme"}
    assert all(c["n"] == 1 and c["spearman_rho"] is None for c in pooled)  # one source only
    freeze = next(r for r in doc["results"] if r["kind"] == "freeze")
    assert freeze["k"] == 2 and freeze["generality_mean"] is not None

    again = cli("run", "--suite", write_suite(tmp_path, probes=probes), "--json")
    assert again.exit_code == 0
    _, _, after = runs(bench_home)
    assert len([r for r in after if r.data.tags.get("level") != "report"]) == \
        len([r for r in all_runs if r.data.tags.get("level") != "report"])  # probes reused too


@pytest.mark.slow
def test_resume_after_kill_minus_nine(tmp_path, bench_home, cli):
    suite = write_suite(tmp_path, folds={"n": 3, "val_fraction": 0.5, "seed": 0},
                        finetune_defaults={"image_size": [16, 16], "batch_size": 16, "epochs": 4},
                        generality={"ks": []})
    bench = str(Path(sys.executable).with_name("bench"))
    env = {**os.environ, "BENCH_HOME": str(bench_home)}
    err = tmp_path / "stderr"
    with err.open("w") as e:
        proc = subprocess.Popen([bench, "run", "--suite", str(suite)], env=env,
                                stdout=subprocess.DEVNULL, stderr=e, start_new_session=True)
    deadline = time.time() + 240
    finished_folds = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(2)  # each look reads the store the run writes to
        try:
            _, _, current = runs(bench_home)
        except Exception:  # the store is created by the child; retry
            continue
        finished_folds = sum(r.data.tags.get("level") == "fold" and r.info.status == "FINISHED"
                             for r in current)
        if finished_folds >= 2:
            break
    assert proc.poll() is None, \
        f"the run ended before it could be killed:\n{err.read_text()[-3000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _, _, killed = runs(bench_home)
    assert any(r.info.status == "RUNNING" for r in killed)

    done = cli("run", "--suite", str(suite), "--json")  # the resuming process may be this one
    assert done.exit_code == 0, done.stderr[-3000:]
    _, _, final = runs(bench_home)
    work = [r for r in final if r.data.tags.get("level") in ("pair", "fold", "pretrain")]
    assert not [r for r in work if r.info.status == "RUNNING"]
    finished = [r for r in work if r.info.status == "FINISHED"]
    hashes = [r.data.tags["config_hash"] for r in finished]
    assert len(hashes) == len(set(hashes)), "a job finished twice"
    assert len([r for r in finished if r.data.tags["level"] == "fold"]) == 6
    assert len([r for r in finished if r.data.tags["level"] == "pair"]) == 2
    for pair in [r for r in finished if r.data.tags["level"] == "pair"]:
        kids = [r for r in finished if r.data.tags.get("mlflow.parentRunId") == pair.info.run_id]
        assert sorted(r.data.tags["fold"] for r in kids) == ["0", "1", "2"]


def test_plan_fails_for_unregistered_dataset(cli, tmp_path, bench_home):
    path = write_suite(tmp_path, targets=[{"name": "isic2018"}])
    res = cli("run", "--suite", path, "--dry-run")
    assert res.exit_code == 1
    assert "needs datasets that are not registered: isic2018" in res.stderr
    assert "`bench add-dataset isic2018`" in res.stderr


def test_cats_scans_without_imagenet_weights_fails_at_plan_time(cli, bench_home):
    res = cli("run", "--suite", "cats-scans", "--targets", "chest,pcam", "--dry-run")
    assert res.exit_code == 1
    assert "Source 'imagenet' means pretrained imagenet weights, and none were given" in res.stderr
    assert "--imagenet-weights PATH" in res.stderr
    res = cli("run", "--suite", "cats-scans", "--imagenet-weights", "/nope/w.pth", "--dry-run")
    assert res.exit_code == 1 and "Weights file /nope/w.pth does not exist" in res.stderr


def _register_fixture(cli, tmp_path, name, writer, **option_changes):
    from registry.catalog import Catalog

    fx = writer(tmp_path / name)
    card = Catalog.load().get(name).model_dump(mode="json")
    card["format"]["options"].update(option_changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(card))
    res = cli("add-dataset", name, "--card", path, "--path", fx.root)
    assert res.exit_code == 0, res.stderr


def test_cats_scans_plans_the_papers_grid_on_real_layouts(cli, tmp_path, bench_home,
                                                          resnet50_weights):
    for _ in range(1):  # chest and pcam fixtures, enlarged so 5 folds stratify
        big = tmp_path / "chest"
        fx = formats.write_chest_xray(big)
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("NORMAL", "PNEUMONIA"):
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(
                fx.root / "chest_xray" / "train" / cls / f"extra{i}.jpeg")
    assert cli("add-dataset", "chest", "--path", fx.root).exit_code == 0
    _register_fixture(cli, tmp_path, "pcam-middle", formats.write_pcam, subset=40)
    weights = resnet50_weights["pth"]  # planning reads its header and shapes, not its data
    res = cli("run", "--suite", "cats-scans", "--targets", "chest,pcam",
              "--sources", "imagenet,chest,pcam", "--imagenet-weights", weights,
              "--dry-run", "--json")
    assert res.exit_code == 0, res.stderr
    plan = res.json()
    assert plan["pretrain"] == ["chest-xray", "pcam-middle"]
    grid = {(p["source"], p["target"]) for p in plan["pairs"]}
    assert grid == {(s, t) for s in ("scratch", "imagenet", "chest-xray", "pcam-middle")
                    for t in ("chest-xray", "pcam-middle")}
    assert all(p["folds"] == 5 for p in plan["pairs"])
    assert plan["runs"] == 2 + 8 * 5
