"""Publishing offline: a suite's pretrained source goes to the MLflow Model Registry and a timm
folder; both load back to the same outputs; the published model serves as a suite source, a
Task2Vec probe network and an estimator probe's source model; bad files are refused unread;
--push without a network fails fast and keeps the folder."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from test_run import TINY, write_suite

SUITE = {**TINY, "name": "pub", "generality": {"ks": []}, "probes": [{"method": "expert"}]}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny suite run and its digits source published (CLI, as a user does it)."""
    tmp = tmp_path_factory.mktemp("pub")
    home = tmp / "home"
    suite = write_suite(tmp, **SUITE)
    env = {**os.environ, "BENCH_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    bench = str(Path(sys.executable).with_name("bench"))
    run = subprocess.run([bench, "run", "--suite", str(suite), "--json"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    pub = subprocess.run([bench, "publish", "digits", "--suite", str(suite), "--json"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert pub.returncode == 0, pub.stderr[-3000:]
    return {"home": home, "suite": suite, "doc": json.loads(pub.stdout),
            "run": json.loads(run.stdout), "tmp": tmp}


def original_model(home: Path, doc: dict):
    from bench_core.models import load_source_model
    from bench_core.sources import SourceModel

    weights = home / "models" / f"{doc['config_hash']}.safetensors"
    return load_source_model(SourceModel("digits", "resnet10t", str(weights), (16, 16))).eval()


def batch() -> torch.Tensor:
    return torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.mark.slow
def test_round_trip_through_the_folder_and_the_registry(published):
    import mlflow.pytorch
    import timm

    home, doc = published["home"], published["doc"]
    folder = Path(doc["folder"])
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json",
                                                        "model.safetensors"]
    x = batch()
    with torch.no_grad():
        expected = original_model(home, doc)(x)
        from_folder = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()(x)
        mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
        from_registry = mlflow.pytorch.load_model(f"models:/{doc['name']}@published").eval()
        assert type(from_registry).__name__ == "ResNet"  # the timm class, restored
        registry_out = from_registry(x)
    assert torch.equal(from_folder, expected) and torch.equal(registry_out, expected)

    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["architecture"] == "resnet10t" and cfg["num_classes"] == 10
    assert cfg["label_names"] == [str(i) for i in range(10)]
    assert cfg["pretrained_cfg"]["input_size"] == [3, 16, 16]
    assert cfg["pretrained_cfg"]["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert cfg["transfer_bench"]["source"] == "digits" and cfg["transfer_bench"]["suite"] == "pub"


@pytest.mark.slow
def test_model_card_and_registry_hold_the_facts(published, catalog):
    from mlflow.tracking import MlflowClient

    doc, run = published["doc"], published["run"]
    card = (Path(doc["folder"]) / "README.md").read_text()
    digits = catalog.get("digits")
    row = next(r for r in run["results"] if r["source"] == "digits" and r["kind"] == "transfer")
    for fact in (digits.description, digits.license, digits.citation.strip().splitlines()[0],
                 "| lfw-faces | " + f"{row['auc_mean']:.4f}", f"{row['transferability_mean']:.2f}",
                 "expert: lfw-faces", "epochs: 2", doc["config_hash"], "library_name: timm"):
        assert fact in card, fact
    c = MlflowClient(f"sqlite:///{published['home'] / 'mlflow.db'}")
    version = c.get_model_version_by_alias(doc["name"], "published")
    assert str(version.version) == doc["version"]
    assert version.tags["source"] == "digits" and version.tags["suite"] == "pub"
    assert version.tags["config_hash"] == doc["config_hash"]
    assert float(version.tags["auc_mean.lfw-faces"]) == pytest.approx(row["auc_mean"], abs=1e-4)


@pytest.mark.slow
def test_models_lists_and_shows_it(published, monkeypatch, cli):
    monkeypatch.setenv("BENCH_HOME", str(published["home"]))
    res = cli("models", "--json")
    assert res.exit_code == 0, res.stderr
    (row,) = [r for r in res.json() if r["name"] == "tb-pub-digits"]
    assert row["aliases"] == ["published"] and row["source"] == "digits"
    assert row["metrics"]["auc_mean.lfw-faces"] > 0.5 and row["folder"] == published["doc"]["folder"]
    shown = cli("models", "show", "tb-pub-digits")
    assert shown.exit_code == 0 and "# tb-pub-digits" in shown.stdout
    missing = cli("models", "show", "tb-pub-digit")
    assert missing.exit_code == 1 and "Did you mean 'tb-pub-digits'" in missing.stderr
    report = cli("report", "--suite", published["suite"], "--json")  # the HTML page lists it
    assert report.exit_code == 0, report.stderr
    page = Path(report.json()["report"]["html"]).read_text()
    models = page.split('id="table-models"')[1].split("</table>")[0]
    assert "tb-pub-digits" in models and "@published" in models and "models:/tb-pub-digits" in models


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["registry", "folder"])
def test_a_published_model_is_a_suite_source(published, tmp_path, monkeypatch, cli, kind):
    monkeypatch.setenv("BENCH_HOME", str(published["home"]))
    spec = (f"models:/{published['doc']['name']}@published" if kind == "registry"
            else published["doc"]["local_dir"])
    suite = write_suite(tmp_path, **{**SUITE, "name": f"reuse-{kind}", "probes": [],
                                      "sources": [{"name": "shared-digits", "weights": spec}]})
    res = cli("run", "--suite", suite, "--json")
    assert res.exit_code == 0, res.stderr
    row = next(r for r in res.json()["results"] if r["source"] == "shared-digits")
    assert row["folds"] == 2 and row["auc_mean"] > 0.5


@pytest.mark.slow
def test_a_published_model_is_a_probe_network(published, monkeypatch, cli):
    monkeypatch.setenv("BENCH_HOME", str(published["home"]))
    t2v = cli("probe", "task2vec", "--datasets", "digits,lfw-faces", "--json",
              "--option", f"weights={published['doc']['local_dir']}", "--option", "arch=resnet10t",
              "--option", "image_size=[16,16]", "--option", "subsets=2", "--option", "fraction=0.1",
              "--option", "max_draws=64", "--option", "head_epochs=1")
    assert t2v.exit_code == 0, t2v.stderr
    assert t2v.json()["distances"][0][1] > 0
    uri = f"models:/{published['doc']['name']}@published"
    logme = cli("probe", "logme", "--datasets", "digits,lfw-faces", "--json",
                "--option", f"models=[{uri}]")
    assert logme.exit_code == 0, logme.stderr
    rows = logme.json()["distances"]
    assert rows[0][1] is not None and rows[1][0] is None  # the digits model scored lfw-faces


def _model_file(tmp_path: Path, name: str) -> Path:
    from safetensors.torch import save_file

    from bench_core.models import build_model

    path = tmp_path / name
    save_file(build_model("resnet18", 5, 0.0).state_dict(), str(path))
    return path


class Payload:
    """A pickle that would write a file if unpickled with code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "executed"))


def test_bad_weight_files_are_refused_unread(tmp_path):
    from bench_core.models import model_from_weights
    from bench_core.weights import WeightsError

    marker = tmp_path / "was-executed"
    renamed = tmp_path / "evil.safetensors"
    renamed.write_bytes(pickle.dumps({"fc.weight": Payload(marker)}))
    with pytest.raises(WeightsError, match="not a valid safetensors file .* not loaded"):
        model_from_weights(f"file:{renamed}", "resnet10t", 2, 0.0)
    evil_pth = tmp_path / "evil.pth"
    torch.save({"fc.weight": Payload(marker)}, evil_pth)
    with pytest.raises(WeightsError, match="nothing in it was executed"):
        model_from_weights(f"file:{evil_pth}", "resnet10t", 2, 0.0)
    assert not marker.exists()

    good = _model_file(tmp_path, "resnet18.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        model_from_weights(f"file:{truncated}", "resnet18", 2, 0.0)
    with pytest.raises(WeightsError, match="do not fit"):
        model_from_weights(f"file:{good}", "resnet10t", 2, 0.0)


@pytest.mark.slow
def test_a_tampered_folder_is_refused(published, tmp_path):
    import shutil

    from bench_core.models import model_from_weights
    from bench_core.weights import WeightsError

    copy = tmp_path / "copy"
    shutil.copytree(published["doc"]["folder"], copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF  # one bit of one weight
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match the SHA-256"):
        model_from_weights(f"local-dir:{copy}", "resnet10t", 2, 0.0)
    with pytest.raises(WeightsError, match="holds a resnet10t, and resnet50 was asked for"):
        model_from_weights(published["doc"]["local_dir"], "resnet50", 2, 0.0)


@pytest.mark.slow
def test_push_offline_fails_fast_and_keeps_the_folder(published, monkeypatch, cli):
    monkeypatch.setenv("BENCH_HOME", str(published["home"]))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    res = cli("publish", "digits", "--suite", published["suite"], "--push", "hf:me/digits")
    assert res.exit_code == 1 and "needs a Hugging Face token in HF_TOKEN" in res.stderr
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_never_printed")
    start = time.perf_counter()
    res = cli("publish", "digits", "--suite", published["suite"], "--push", "hf:me/digits")
    assert time.perf_counter() - start < 60
    assert res.exit_code == 1 and "cannot reach the Hugging Face Hub" in res.stderr
    assert "The folder is ready to upload" in res.stderr
    assert "hf_secret_value_never_printed" not in res.stderr + res.stdout
    folder = Path(published["doc"]["folder"])
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()


def test_publish_says_what_is_missing(cli, tmp_path, bench_home):
    res = cli("publish", "digits", "--suite", write_suite(tmp_path, **SUITE))
    assert res.exit_code == 1 and "has no finished pretraining of 'digits'" in res.stderr
    res = cli("publish", "digits", "--alias", "latest")
    assert res.exit_code == 1 and "'latest' (MLflow's own" in res.stderr
    assert not (bench_home / "published").exists()


@pytest.mark.slow
def test_recommend_ranks_published_models_beside_the_suites(published, monkeypatch, cli):
    monkeypatch.setenv("BENCH_HOME", str(published["home"]))
    res = cli("recommend", "--target", "lfw-faces", "--suite", published["suite"],
              "--method", "expert", "--json")
    assert res.exit_code == 0, res.stderr
    rows = {r["model"]: r for r in res.json()["models"]}
    prefix = f"models:/{published['doc']['name']}/"  # its newest version (other tests publish too)
    (mine,) = [r for m, r in rows.items() if m.startswith(prefix)]
    assert mine["kind"] == "published" and mine["source"] == "digits"
    assert mine["logme"] == pytest.approx(rows["digits"]["logme"])  # the same weights
    text = cli("recommend", "--target", "lfw-faces", "--suite", published["suite"],
               "--method", "expert")
    assert "Source models by logme on lfw-faces" in text.stdout


def test_a_hub_model_without_network_fails_fast_and_clearly(tmp_path):
    from bench_core.models import model_from_weights
    from bench_core.weights import WeightsError

    start = time.perf_counter()
    with pytest.raises(WeightsError, match="Could not download hf-hub:someone/digits-model .*"
                                           "local-dir:PATH"):
        model_from_weights("hf-hub:someone/digits-model", "resnet10t", 2, 0.0, cache=tmp_path)
    assert time.perf_counter() - start < 60
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".safetensors"]
