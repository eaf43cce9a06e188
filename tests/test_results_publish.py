"""``bench results publish``: a result set as a Hugging Face dataset folder and an OpenML
dataset, checked with the real readers (datasets, pyarrow, huggingface_hub's DatasetCard,
openml-python's objects and liac-arff); refusals (unknown name, unknown licence, --push without
a token or a network) and that nothing is ever half-written."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from result_files import cats_scans_csv, plain_files
from registry.result_readers import read_any
from registry.result_store import ResultStore
from registry.transfer_table import TransferTable, read_table, validate

LICENCE = {"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/"}
META = {"title": "Toy transfer table", "licenses": [LICENCE],
        "citation": "Doe, J. and Roe, R. (2026). A toy transfer table.",
        "methods": {"good": {"description": "a score that tracks the truth"}}}
TOKEN = "hf_secret_value_never_printed"


def _toy(folder: Path, **meta) -> TransferTable:
    """The plain test files as a table with all three resources (datasets with a meta-feature)."""
    files = plain_files(folder)
    table = read_any(files["results"], scores=[files["scores"]], attributes=files["attributes"],
                     meta={**META, **meta})
    names = sorted(set(table.results["candidate"]) - {"scratch"} | set(table.results["target"]))
    datasets = pd.DataFrame({"name": names, "images": range(100, 100 + len(names)),
                             "classes": 2, "meta_channels": 3.0})
    return validate(dataclasses.replace(table, datasets=datasets))


@pytest.fixture
def toy(paths, tmp_path) -> TransferTable:
    table = _toy(tmp_path / "in")
    ResultStore(paths).import_table(table, "toy")
    return ResultStore(paths).load("toy")


def _rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values, missing ones None, in a fixed order."""
    rows = [{k: v.item() if hasattr(v, "item") else v for k, v in row.items()}  # numpy scalars
            for row in frame.astype(object).where(frame.notna(), None).to_dict("records")]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def _published(cli, *args) -> dict:
    res = cli("results", "publish", "toy", "--json", *args)
    assert res.exit_code == 0, res.stderr
    return res.json()


def test_the_folder_loads_with_datasets_and_pyarrow(toy, cli, bench_home, tmp_path):
    import datasets

    doc = _published(cli)
    folder = Path(doc["folder"])
    assert folder == bench_home / "published-results" / "toy"
    assert doc["files"] == ["README.md", "datapackage.json", "datasets/datasets.parquet",
                            "results/results.parquet", "scores/scores.parquet"]
    assert doc["configs"] == {"results": 30, "scores": 24, "datasets": 7}
    assert doc["version"] == toy.version and doc["licence"] == ["CC-BY-4.0"]
    cache = str(tmp_path / "hf-cache")
    default = datasets.load_dataset(str(folder), cache_dir=cache)
    assert list(default) == ["train"] and default["train"].num_rows == len(toy.results)
    for res in ("results", "scores", "datasets"):
        frame = getattr(toy, res)
        loaded = datasets.load_dataset(str(folder), res, cache_dir=cache)["train"]
        assert sorted(loaded.column_names) == sorted(frame.columns)
        assert _rows(pd.DataFrame(loaded.to_list())[list(frame.columns)]) == _rows(frame)
        arrow = pq.read_table(folder / res / f"{res}.parquet").to_pandas()
        assert _rows(arrow[list(frame.columns)]) == _rows(frame)
    by_dir = datasets.load_dataset("parquet", data_dir=str(folder / "scores"), cache_dir=cache)
    assert _rows(by_dir["train"].to_pandas()) == _rows(toy.scores)


def test_the_dataset_card_carries_licence_version_and_datasheet(toy, cli):
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(Path(_published(cli)["folder"]) / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "cc-by-4.0" and data["pretty_name"] == "Toy transfer table"
    assert data["task_categories"] == ["tabular-regression"] and "meta-learning" in data["tags"]
    assert [c["config_name"] for c in data["configs"]] == ["results", "scores", "datasets"]
    assert data["configs"][0] == {"config_name": "results", "default": True, "data_files": [
        {"split": "train", "path": "results/*.parquet"}]}
    for heading in ("Motivation", "Composition", "Collection process", "Preprocessing", "Uses",
                    "Distribution", "Maintenance", "Citation"):
        assert f"\n## {heading}\n" in card.text
    assert toy.version in card.text and META["citation"] in card.text
    assert "30 rows in `results`: 3 targets, 4 candidates" in card.text
    assert "`good`: a score that tracks the truth" in card.text
    assert "`noise`: no description given" in card.text
    assert "CC-BY-4.0 (https://creativecommons.org/licenses/by/4.0/)" in card.text


def test_the_folder_is_the_transfer_table_again(toy, cli):
    folder = Path(_published(cli)["folder"])
    assert read_table(folder).version == toy.version
    again = cli("results", "import", folder, "--name", "toy", "--json")
    assert again.exit_code == 0 and again.json()["status"] == "unchanged"


def test_the_openml_dataset_holds_the_table(toy, paths):
    """openml-python's own objects: the OpenMLDataset built, what its upload would send, and
    the files written read back with liac-arff."""
    import arff
    import xmltodict

    from benchmark.publishing.results_share import publish_results

    pub = publish_results("toy", paths, openml=True)
    dataset = pub.openml.dataset
    assert dataset.name == "toy-transfer-results" and dataset.default_target_attribute == "value"
    assert dataset.licence == "CC-BY-4.0" and dataset.citation == META["citation"]
    assert dataset.version_label == toy.version and "Doe" in dataset.creator
    sent = dataset._get_file_elements()["dataset"]  # what OpenMLBase.publish posts
    assert sent == (pub.folder / "openml" / "dataset.arff").read_text()
    decoded = arff.loads(sent)
    columns = [a[0] for a in decoded["attributes"]]
    assert columns == ["candidate", "candidate_kind", "target", "repeat", "metric", "value",
                       "candidate_images", "score_good", "score_noise"]
    assert dict(decoded["attributes"])["target"] == ["t0", "t1", "t2"]
    frame = pd.DataFrame(decoded["data"], columns=columns)
    truth = toy.results.merge(toy.scores.pivot(index=["candidate", "target"], columns="method",
                                               values="score").reset_index(), how="left")
    merged = frame.merge(truth, on=["candidate", "target", "repeat"], suffixes=("", "_truth"))
    assert len(merged) == len(toy.results) == pub.openml.n_instances
    assert (merged["value"] == merged["value_truth"]).all()
    assert (merged["score_good"].isna() == (merged["candidate"] == "scratch")).all()
    assert merged["score_good"].dropna().equals(merged["good"].dropna())
    described = xmltodict.parse((pub.folder / "openml" / "description.xml").read_text())
    fields = described["oml:data_set_description"]
    assert fields["oml:licence"] == "CC-BY-4.0" and fields["oml:version_label"] == toy.version
    assert fields["oml:default_target_attribute"] == "value"
    assert "'value' is the auc" in fields["oml:description"]


def test_openml_on_the_command_line_goes_beside_the_hub_files(toy, cli):
    doc = _published(cli, "--openml")
    assert doc["openml"]["files"] == ["dataset.arff", "description.xml"]
    assert doc["openml"]["n_instances"] == 30 and doc["openml"]["openml_id"] is None
    assert {"openml/dataset.arff", "openml/description.xml"} <= set(doc["files"])
    text = cli("results", "publish", "toy", "--openml")
    assert text.exit_code == 0
    assert "OpenML dataset: 30 instances x 8 features + target 'value'" in text.stdout


def test_an_unknown_licence_is_refused_and_nothing_is_written(paths, cli, bench_home, tmp_path):
    store = ResultStore(paths)
    store.import_table(read_any(cats_scans_csv(tmp_path / "cats.csv")), "cats")
    res = cli("results", "publish", "cats", "--openml")
    assert res.exit_code == 1
    assert "Result set 'cats' has licence 'unknown' (The source repository carries no " \
           "licence" in res.stderr
    assert "only their owner may allow that" in res.stderr
    assert "import the copy with `bench results import COPY --name cats --replace`" in res.stderr
    files = plain_files(tmp_path / "plain")
    store.import_table(read_any(files["results"]), "unlicensed")
    res = cli("results", "publish", "unlicensed")
    assert res.exit_code == 1 and "Result set 'unlicensed' has no licence" in res.stderr
    assert not (bench_home / "published-results").exists()


def test_an_unknown_name_is_refused(toy, cli, bench_home):
    res = cli("results", "publish", "toyy")
    assert res.exit_code == 1
    assert "Unknown result set 'toyy'. Did you mean 'toy'?" in res.stderr
    assert "bench results list" in res.stderr
    assert not (bench_home / "published-results").exists()


def test_push_refusals_and_no_network(toy, cli, bench_home, monkeypatch, closed_port, tmp_path):
    """Syntax and token are checked before anything is written; unreachable or offline, the
    push fails with the folder written, complete and ready to upload."""
    import datasets

    folder = bench_home / "published-results" / "toy"
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    res = cli("results", "publish", "toy", "--push", "hf:me/toy")
    assert res.exit_code == 1 and "needs a Hugging Face token in HF_TOKEN" in res.stderr
    assert f"Nothing was written; the folder would be {folder}" in res.stderr
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    res = cli("results", "publish", "toy", "--push", "me/toy")
    assert res.exit_code == 1 and "--push 'me/toy' must look like hf:ORG/REPO" in res.stderr
    assert not folder.exists()
    res = cli("results", "publish", "toy", "--push", "hf:me/toy")
    assert res.exit_code == 1
    assert f"cannot reach the Hugging Face Hub at http://127.0.0.1:{closed_port}" in res.stderr
    assert f"The folder is written: {folder}" in res.stderr
    assert f"`hf upload me/toy {folder} --repo-type dataset`" in res.stderr
    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))
    assert loaded["train"].num_rows == len(toy.results)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    res = cli("results", "publish", "toy", "--push", "hf:me/toy")
    assert res.exit_code == 1 and "HF_HUB_OFFLINE is set" in res.stderr
    assert read_table(folder).version == toy.version
    assert TOKEN not in res.stderr + res.stdout


@pytest.mark.slow  # imports test_publish (torch) for its stand-in Hub
def test_a_refused_upload_keeps_the_folder_ready(toy, cli, bench_home, monkeypatch):
    from test_publish import _Refusing

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with _Refusing() as endpoint:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        res = cli("results", "publish", "toy", "--push", "hf:me/toy")
    folder = bench_home / "published-results" / "toy"
    assert res.exit_code == 1
    assert f"--push to me/toy at {endpoint} failed (HfHubHTTPError" in res.stderr
    assert f"The folder is ready to upload: {folder}." in res.stderr
    assert "--repo-type dataset`, or publish again with --push." in res.stderr
    assert TOKEN not in res.stderr + res.stdout
    assert read_table(folder).version == toy.version


def test_the_push_is_the_model_push_to_a_dataset_repo(toy, cli, bench_home, monkeypatch):
    """Up to the network call: the same huggingface_hub calls as a model push
    (benchmark.publishing.hub.upload), to a dataset repo, with the Hub files only."""
    import socket
    from types import SimpleNamespace

    from huggingface_hub import HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: (
        calls.append(("create_repo", repo_id, kw)), SimpleNamespace(repo_id=repo_id))[1])
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(
        ("upload_folder", self.endpoint, kw)))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.socket() as listening:  # reachable: it accepts connections
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        endpoint = f"http://127.0.0.1:{listening.getsockname()[1]}"
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        doc = _published(cli, "--push", "hf:me/toy", "--openml")
    folder = bench_home / "published-results" / "toy"
    assert doc["pushed"] == f"{endpoint}/datasets/me/toy"
    assert calls[0] == ("create_repo", "me/toy", {"repo_type": "dataset", "exist_ok": True})
    name, where, upload = calls[1]
    assert name == "upload_folder" and where == endpoint
    assert upload["repo_type"] == "dataset" and upload["folder_path"] == str(folder)
    assert upload["allow_patterns"] == ["README.md", "datapackage.json", "results/*.parquet",
                                        "scores/*.parquet", "datasets/*.parquet"]
    assert 'load_dataset("me/toy", "results")' in (folder / "README.md").read_text()


def test_nothing_is_half_written(toy, cli, bench_home, monkeypatch):
    """A failure while writing leaves the folder as it was (absent, or the earlier publish)."""
    from benchmark.publishing import results_share

    parent, card = bench_home / "published-results", results_share.dataset_card

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(results_share, "dataset_card", broken)
    with pytest.raises(OSError, match="disk full"):
        cli("results", "publish", "toy", "--openml")
    assert list(parent.iterdir()) == []
    monkeypatch.setattr(results_share, "dataset_card", card)
    _published(cli)
    before = {p: p.read_bytes() for p in (parent / "toy").rglob("*") if p.is_file()}
    monkeypatch.setattr(results_share, "dataset_card", broken)
    with pytest.raises(OSError, match="disk full"):
        cli("results", "publish", "toy", "--openml")
    assert [p.name for p in parent.iterdir()] == ["toy"]
    assert {p: p.read_bytes() for p in (parent / "toy").rglob("*") if p.is_file()} == before


def test_out_takes_a_new_folder_and_never_replaces_a_foreign_one(toy, cli, tmp_path):
    doc = _published(cli, "--out", tmp_path / "shared" / "toy")
    assert doc["folder"] == str(tmp_path / "shared" / "toy")
    assert read_table(tmp_path / "shared" / "toy").version == toy.version
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    res = cli("results", "publish", "toy", "--out", foreign)
    assert res.exit_code == 1
    assert f"{foreign} exists and is not a folder `bench results publish` wrote (it holds " \
           "thesis.tex)" in res.stderr and "Give --out a new or empty folder." in res.stderr
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]
