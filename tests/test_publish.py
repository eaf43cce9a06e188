"""Publishing offline: a suite's pretrained source goes to the MLflow Model Registry and a timm
folder; both load back to the same outputs; the published model serves as a suite source, a
Task2Vec probe network and an estimator probe's source model; bad files are refused unread;
--push without a network fails fast and keeps the folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from typer.testing import CliRunner

from benchmark.cli import app
from test_run import TINY, write_suite

SUITE = {**TINY, "name": "pub", "generality": {"ks": []}, "probes": [{"method": "expert"}]}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny suite run and its digits source published (CLI, as a user does it)."""
    tmp = tmp_path_factory.mktemp("pub")
    home = tmp / "home"
    suite = write_suite(tmp, **SUITE)
    env = {"BENCH_HOME": str(home), "MLFLOW_TRACKING_URI": None}
    run = CliRunner().invoke(app, ["run", "--suite", str(suite), "--json"], env=env)
    assert run.exit_code == 0, run.stderr[-3000:]
    pub = CliRunner().invoke(app, ["publish", "digits", "--suite", str(suite), "--json"], env=env)
    assert pub.exit_code == 0, pub.stderr[-3000:]
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
                 f"- **origin**: {digits.origin}", f"- **modality**: {digits.modality}",
                 f"| lfw-faces | {row['auc_mean']:.4f} | {row['auc_std']:.4f} | "
                 f"{row['transferability_mean']:.2f} | {row['transferability_std']:.2f} |",
                 "expert: lfw-faces", "epochs: 2", doc["config_hash"], "library_name: timm"):
        assert fact in card, fact
    c = MlflowClient(f"sqlite:///{published['home'] / 'mlflow.db'}")
    version = c.get_model_version_by_alias(doc["name"], "published")
    assert str(version.version) == doc["version"]
    assert version.tags["source"] == "digits" and version.tags["suite"] == "pub"
    assert version.tags["config_hash"] == doc["config_hash"]
    assert float(version.tags["auc_mean.lfw-faces"]) == pytest.approx(row["auc_mean"], abs=1e-4)
    assert float(version.tags["auc_std.lfw-faces"]) == pytest.approx(row["auc_std"], abs=1e-4)
    assert float(version.tags["transferability_std.lfw-faces"]) == \
        pytest.approx(row["transferability_std"], abs=1e-2)


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
@pytest.mark.parametrize("kind", ["registry", "folder", "file"])
def test_a_published_model_is_a_suite_source(published, tmp_path, monkeypatch, cli, kind):
    monkeypatch.setenv("BENCH_HOME", str(published["home"]))
    spec = {"registry": f"models:/{published['doc']['name']}@published",
            "folder": published["doc"]["local_dir"],
            "file": str(Path(published["doc"]["folder"]) / "model.safetensors")}[kind]
    suite = write_suite(tmp_path, **{**SUITE, "name": f"reuse-{kind}", "probes": [],
                                      "sources": [{"name": "shared-digits", "weights": spec}]})
    res = cli("run", "--suite", suite, "--json")
    assert res.exit_code == 0, res.stderr
    row = next(r for r in res.json()["results"] if r["source"] == "shared-digits")
    assert row["folds"] == 2 and row["auc_mean"] > 0.5


@pytest.mark.slow
def test_a_published_model_is_a_probe_network(published, monkeypatch, cli):
    """Task2Vec's probe network from the folder, the registry and the bare weights file: the
    same weights, the same distances, whatever torch's global random state (the new head is
    drawn from the probe's own seed: the global state is set differently before each)."""
    monkeypatch.setenv("BENCH_HOME", str(published["home"]))
    folder = Path(published["doc"]["folder"])
    distances = {}
    for spec in (published["doc"]["local_dir"], f"models:/{published['doc']['name']}@published",
                 str(folder / "model.safetensors")):
        torch.manual_seed(len(distances))
        t2v = cli("probe", "task2vec", "--datasets", "digits,lfw-faces", "--json",
                  "--option", f"weights={spec}", "--option", "arch=resnet10t",
                  "--option", "image_size=[16,16]", "--option", "subsets=2",
                  "--option", "fraction=0.1", "--option", "max_draws=64",
                  "--option", "head_epochs=1")
        assert t2v.exit_code == 0, t2v.stderr
        distances[spec] = t2v.json()["distances"]
    first, *others = distances.values()
    assert first[0][1] > 0 and all(d == first for d in others)


@pytest.mark.slow
def test_an_estimator_probe_scores_published_models_from_any_spec(published, monkeypatch, cli,
                                                                  tmp_path):
    """logme with the registry model (in a fresh process, another working directory: the
    store is BENCH_HOME's, not MLflow's default), the folder and the bare weights file (named
    for its source; the suite option gives its architecture and size): the same scores."""
    monkeypatch.setenv("BENCH_HOME", str(published["home"]))
    weights = Path(published["doc"]["folder"]) / "model.safetensors"
    suite = f"suite={published['suite']}"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    uri = f"models:/{published['doc']['name']}@published"
    fresh = subprocess.run([str(Path(sys.executable).with_name("bench")), "probe", "logme",
                            "--datasets", "digits,lfw-faces", "--json", "--option",
                            f"models=[{uri}]", "--option", suite], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()
    scores = {uri: json.loads(fresh.stdout)["distances"]}
    for spec in (published["doc"]["local_dir"], f"digits={weights}"):
        logme = cli("probe", "logme", "--datasets", "digits,lfw-faces", "--json",
                    "--option", f"models=[{spec}]", "--option", suite)
        assert logme.exit_code == 0, logme.stderr
        scores[spec] = logme.json()["distances"]
    first, *others = scores.values()
    assert first[0][1] is not None and first[1][0] is None  # the digits model scored lfw-faces
    assert all(s == first for s in others)
    unnamed = cli("probe", "logme", "--datasets", "digits,lfw-faces",
                  "--option", f"models=[{weights}]", "--option", suite)
    assert unnamed.exit_code == 1
    assert "does not say which source dataset" in unnamed.stderr and "digits=" in unnamed.stderr
    twice = cli("probe", "logme", "--datasets", "digits,lfw-faces", "--option", suite,
                "--option", f"models=[{published['doc']['local_dir']}, digits={weights}]")
    assert twice.exit_code == 1 and "Two models stand for 'digits'" in twice.stderr


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


def _versions(home: Path, name: str) -> list[int]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    return sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.mark.slow
def test_push_offline_fails_fast_and_keeps_the_folder(published, monkeypatch, cli, closed_port):
    """Every check of --push runs before anything is written or registered."""
    home, name = published["home"], published["doc"]["name"]
    folder = Path(published["doc"]["folder"])
    monkeypatch.setenv("BENCH_HOME", str(home))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    before, versions = _snapshot(folder), _versions(home, name)
    publish = ("publish", "digits", "--suite", published["suite"], "--push")
    res = cli(*publish, "hf:me/digits")
    assert res.exit_code == 1 and "needs a Hugging Face token in HF_TOKEN" in res.stderr
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_never_printed")
    for bad in ("hf:me", "me/digits", "hf:me/digits/extra"):
        res = cli(*publish, bad)
        assert res.exit_code == 1 and f"--push '{bad}' must look like hf:ORG/REPO" in res.stderr
    start = time.perf_counter()
    res = cli(*publish, "hf:me/digits")
    assert time.perf_counter() - start < 30
    assert res.exit_code == 1, res.stderr
    assert f"cannot reach the Hugging Face Hub at http://127.0.0.1:{closed_port}" in res.stderr
    assert f"Nothing was written or registered; the folder would be {folder}" in res.stderr
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    res = cli(*publish, "hf:me/digits")
    assert res.exit_code == 1 and "HF_HUB_OFFLINE is set" in res.stderr
    assert "hf_secret_value_never_printed" not in res.stderr + res.stdout
    assert _snapshot(folder) == before and _versions(home, name) == versions


class _Refusing:
    """A local stand-in for the Hub that answers every request 401 (a token it refuses)."""

    def __enter__(self) -> str:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                body = b'{"error": "Invalid credentials in Authorization header"}'
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = _refuse

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_a_failed_upload_keeps_the_folder_ready_and_registers_nothing(published, monkeypatch,
                                                                      cli, tmp_path):
    import timm

    home, name = published["home"], published["doc"]["name"]
    monkeypatch.setenv("BENCH_HOME", str(home))
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_never_printed")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    versions, out = _versions(home, name), tmp_path / "ready"
    with _Refusing() as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        res = cli("publish", "digits", "--suite", published["suite"], "--push", "hf:me/digits",
                  "--out", out)
    assert res.exit_code == 1
    assert f"--push to me/digits at {endpoint} failed (HfHubHTTPError" in res.stderr
    assert "nothing was registered" in res.stderr
    assert "The folder is ready to upload:" in res.stderr and out.name in res.stderr
    assert "hf_secret_value_never_printed" not in res.stderr + res.stdout
    assert _versions(home, name) == versions
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    with torch.no_grad():
        x = batch()
        ready = timm.create_model(f"local-dir:{out}", pretrained=True).eval()(x)
        assert torch.equal(ready, original_model(home, published["doc"])(x))


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
    n_params = sum(p.numel() for p in original_model(published["home"], published["doc"])
                   .parameters())  # resnet10t with digits' 10-class head
    assert mine["parameters"] == rows["digits"]["parameters"] == n_params
    assert mine["pretraining_images"] == rows["digits"]["pretraining_images"] == 1797
    text = cli("recommend", "--target", "lfw-faces", "--suite", published["suite"],
               "--method", "expert")
    assert "Source models by logme on lfw-faces" in text.stdout
    assert f"{n_params:,} parameters" in text.stdout and "1,797 images" in text.stdout


@pytest.mark.slow
def test_publish_a_pretraining_run_with_its_alias_on_the_card(published, monkeypatch, cli,
                                                               tmp_path):
    """--run: the pretraining run, SOURCE checked against it; the card's Use section names
    the registry model and the alias given. (Last: it adds a version with another alias.)"""
    home, name = published["home"], published["doc"]["name"]
    monkeypatch.setenv("BENCH_HOME", str(home))
    pretrain = json.loads((Path(published["doc"]["folder"]) / "config.json").read_text())
    run_id = pretrain["transfer_bench"]["run_id"]
    versions = _versions(home, name)
    wrong = cli("publish", "lfw-faces", "--run", run_id, "--out", tmp_path / "wrong")
    assert wrong.exit_code == 1
    assert f"Run {run_id} pretrained 'digits', not 'lfw-faces'" in wrong.stderr
    assert not (tmp_path / "wrong").exists() and _versions(home, name) == versions
    res = cli("publish", "digits", "--run", run_id, "--alias", "colleague", "--out",
              tmp_path / "mine", "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert doc["suite"] == "pub" and doc["config_hash"] == published["doc"]["config_hash"]
    assert _versions(home, name) == sorted([*versions, int(doc["version"])])
    use = (tmp_path / "mine" / "README.md").read_text().split("## Use")[1].split("## ")[0]
    assert f"`models:/{name}@colleague`" in use and f"`models:/{name}/latest`" in use
    assert "{name}" not in use and "@published" not in use


@pytest.mark.slow
def test_a_kept_fold_model_is_published_by_its_run(published, monkeypatch, cli, tmp_path):
    """keep_models on: each fold run keeps its fine-tuned model and `bench publish SOURCE
    --run FOLD_RUN` publishes it; the published folder gives the kept weights' outputs. A
    fold run of a suite without it is refused, naming the setting."""
    import mlflow.artifacts
    import timm
    from safetensors.torch import load_file

    from registry.store import RegistryStore
    from test_run import client

    home = published["home"]
    monkeypatch.setenv("BENCH_HOME", str(home))
    c = client(home)
    plain = c.search_runs([c.get_experiment_by_name("transfer-bench/pub").experiment_id],
                          "tags.level = 'fold' and tags.source = 'digits'")[0]
    refused = cli("publish", "digits", "--run", plain.info.run_id, "--out", tmp_path / "no")
    assert refused.exit_code == 1
    assert f"Fold run {plain.info.run_id} (digits -> lfw-faces" in refused.stderr
    assert "kept no fine-tuned model" in refused.stderr and "keep_models: true" in refused.stderr
    assert not (tmp_path / "no").exists()

    suite = write_suite(tmp_path, **{**SUITE, "name": "keep", "probes": [], "targets": [
        {"name": "lfw-faces", "finetune": {"keep_models": True, "epochs": 1}}]})
    res = cli("run", "--suite", suite, "--json")  # digits' pretraining is reused
    assert res.exit_code == 0, res.stderr
    exp = c.get_experiment_by_name("transfer-bench/keep").experiment_id
    folds = c.search_runs([exp], "tags.level = 'fold' and tags.source = 'digits'")
    assert len(folds) == 2 and all(r.data.tags["kept_model"] == "1" for r in folds)
    fold = folds[0]
    wrong = cli("publish", "lfw-faces", "--run", fold.info.run_id, "--out", tmp_path / "w")
    assert wrong.exit_code == 1 and "fine-tuned from 'digits'" in wrong.stderr
    pub = cli("publish", "digits", "--run", fold.info.run_id, "--out", tmp_path / "ft", "--json")
    assert pub.exit_code == 0, pub.stderr
    doc = pub.json()
    assert doc["name"] == "tb-keep-digits-to-lfw-faces" and doc["run_id"]

    kept = Path(mlflow.artifacts.download_artifacts(
        run_id=fold.info.run_id, artifact_path="model/model.safetensors",
        dst_path=str(tmp_path / "kept"), tracking_uri=f"sqlite:///{home / 'mlflow.db'}"))
    classes = RegistryStore(home / "registry.db").get("lfw-faces").classes
    direct = timm.create_model("resnet10t", num_classes=len(classes))
    direct.load_state_dict(load_file(str(kept)))
    x = batch()
    with torch.no_grad():
        from_folder = timm.create_model(f"local-dir:{tmp_path / 'ft'}", pretrained=True).eval()
        assert torch.equal(from_folder(x), direct.eval()(x))
    cfg = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert cfg["label_names"] == list(classes)
    assert cfg["transfer_bench"]["target"] == "lfw-faces"
    assert cfg["transfer_bench"]["run_id"] == fold.info.run_id
    card = (tmp_path / "ft" / "README.md").read_text()
    auc = fold.data.metrics["test_auc"]
    assert "fine-tuned** from **digits** to **lfw-faces** (digits -> lfw-faces)" in card
    assert f"fold {fold.data.tags['fold']}, repeat 0, test AUC **{auc:.4f}**" in card
