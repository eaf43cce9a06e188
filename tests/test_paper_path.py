"""The paper's path executed, not only planned (van den Brandt et al. 2021, "Cats, not CAT
scans"): the cats-scans suite at tiny settings (one epoch, small batches, two folds, small
images) on the real archive layouts of ISIC 2018, the Kaggle chest X-rays and PCam, with a timm
ResNet50, its dropout head and ImageNet weights given as .safetensors and as a .pth state dict,
through pretraining, fine-tuning, the suite's probes (expert, Task2Vec on the ImageNet network)
and the report."""

from __future__ import annotations

import pytest
import yaml

import formats
from benchmark.suite.files import load_suite_dict

TINY = {"image_size": [64, 64], "batch_size": 8, "epochs": 1}


def _register(cli, tmp_path) -> None:
    from registry.catalog import Catalog

    isic = formats.write_isic2018(tmp_path / "isic", per_class=10)
    card = Catalog.load().get("isic2018").model_dump(mode="json")
    (tmp_path / "isic2018.yaml").write_text(yaml.safe_dump(card))
    assert cli("add-dataset", "isic2018", "--card", tmp_path / "isic2018.yaml", "--path",
               isic.root).exit_code == 0
    chest = formats.write_chest_xray(tmp_path / "chest", scale=4)
    assert cli("add-dataset", "chest", "--path", chest.root).exit_code == 0
    pcam = formats.write_pcam(tmp_path / "pcam")
    card = Catalog.load().get("pcam-middle").model_dump(mode="json")
    card["format"]["options"].update(subset=48)
    (tmp_path / "pcam.yaml").write_text(yaml.safe_dump(card))
    assert cli("add-dataset", "pcam-middle", "--card", tmp_path / "pcam.yaml", "--path",
               pcam.root).exit_code == 0


def _tiny_cats_scans(tmp_path):
    """cats-scans as shipped, at tiny settings: the same sources, heads, augmentation and
    probes; one epoch, batches of 8, 64x64 images, two folds, Task2Vec's subsets cut."""
    data, _ = load_suite_dict("cats-scans")
    data |= {"name": "cats-tiny", "folds": {**data["folds"], "n": 2}}
    for key in ("pretrain_defaults", "finetune_defaults"):
        data[key] |= TINY
    for item in data["sources"] + data["targets"]:
        for key in ("pretrain", "finetune"):
            if key in item:
                item[key] |= TINY
    data["probes"][1]["options"] |= {"image_size": [64, 64], "subsets": 2, "min_subset": 16,
                                     "max_draws": 16, "head_epochs": 1, "head_draws": 64}
    path = tmp_path / "cats-tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_the_papers_grid_runs_end_to_end_with_resnet50_and_imagenet_weights(
        cli, tmp_path, bench_home, resnet50_weights):
    _register(cli, tmp_path)
    suite = _tiny_cats_scans(tmp_path)
    res = cli("run", "--suite", suite, "--targets", "chest,pcam",
              "--sources", "imagenet,isic2018", "--imagenet-weights",
              resnet50_weights["safetensors"], "--json")
    assert res.exit_code == 0, res.stderr[-3000:]
    doc = res.json()
    grid = {(r["source"], r["target"]) for r in doc["results"] if r["kind"] != "freeze"}
    assert grid == {(s, t) for s in ("scratch", "imagenet", "isic2018")
                    for t in ("chest-xray", "pcam-middle")}
    assert all(r["folds"] == 2 and 0.0 <= r["auc_mean"] <= 1.0 for r in doc["results"])
    imagenet = [r for r in doc["results"] if r["source"] == "imagenet"]
    assert all(r["transferability_mean"] is not None for r in imagenet)
    assert {r["probe"] for r in doc["correlations"] or []} <= {"expert", "task2vec"}
    runs = _runs(bench_home)
    probes = {r.data.tags["probe"] for r in runs if r.data.tags.get("level") == "probe"}
    assert probes == {"expert", "task2vec"}
    folds = [r for r in runs if r.data.tags.get("level") == "fold"
             and r.data.tags["source"] == "imagenet"]
    assert {f.data.params["arch.name"] for f in folds} == {"resnet50"}
    assert {f.data.params["arch.drop_rate"] for f in folds} == {"0.5"}
    assert (bench_home / "reports" / "cats-tiny" / "report.html").is_file()

    again = cli("run", "--suite", suite, "--targets", "chest", "--sources", "imagenet",
                "--imagenet-weights", resnet50_weights["pth"], "--json")
    assert again.exit_code == 0, again.stderr[-3000:]
    pth = again.json()  # other weights file: its pairs are new, scratch is reused
    assert pth["jobs_reused"] >= 1 and pth["jobs_run"] >= 2


def _runs(home):
    from stores import store_client

    client = store_client(home)
    exp = client.get_experiment_by_name("transfer-bench/cats-tiny")
    return client.search_runs([exp.experiment_id], max_results=1000)
