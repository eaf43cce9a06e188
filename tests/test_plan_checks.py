"""What can fail at run time fails at plan time, before any job runs, with what to do: the
paper's command from the wrong suite, every split the run will make (pretraining, folds of
every repeat, official splits, subsets), weights files that cannot be read or do not fit the
architecture, probe subsets and samples, estimator probes without a model, and Task2Vec's
hours on a CPU said before it starts."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch
import yaml

import formats
from bench_core.models import build_model
from test_run import TINY, write_suite


def _register_isic(cli, tmp_path) -> None:
    from registry.catalog import Catalog

    fx = formats.write_isic2018(tmp_path / "isic")  # 9 images of 7 classes: ISIC's layout
    card = Catalog.load().get("isic2018").model_dump(mode="json")
    path = tmp_path / "isic2018.yaml"
    path.write_text(yaml.safe_dump(card))
    res = cli("add-dataset", "isic2018", "--card", path, "--path", fx.root)
    assert res.exit_code == 0, res.stderr


def test_the_papers_command_in_the_default_suite_says_what_to_type(cli):
    res = cli("run", "--targets", "chest,pcam", "--dry-run")
    assert res.exit_code == 1
    flat = " ".join(res.stderr.split())
    assert "has no target 'chest-xray', 'pcam-middle'" in flat
    assert ("run `bench run --suite cats-scans --targets chest-xray,pcam-middle "
            "--imagenet-weights PATH`") in flat
    res = cli("run", "--sources", "stl10", "--dry-run")
    assert "bench run --suite cats-scans --sources stl10`" in " ".join(res.stderr.split())


def test_a_pretraining_split_that_cannot_be_made_fails_at_plan_time(cli, tmp_path, bench_home):
    _register_isic(cli, tmp_path)
    suite = write_suite(tmp_path, sources=[{"name": "isic2018"}], probes=[],
                        generality={"ks": []})
    res = cli("run", "--suite", suite, "--json")
    assert res.exit_code == 1
    flat = " ".join(res.stderr.split())
    assert "Source 'isic2018' cannot be split for pretraining" in flat
    assert "'MEL': 1" in flat and "leave 'isic2018' out (--sources ...)" in flat
    assert not (bench_home / "mlflow.db").exists()  # nothing was run, no run was opened


def test_a_fold_part_without_a_class_fails_at_plan_time(cli, tmp_path, bench_home):
    from registry.catalog import Catalog

    fx = formats.write_medmnist(tmp_path / "m")
    card = Catalog.load().get("dermamnist").model_dump(mode="json")
    card.update(name="tiny-derma", classes=list(fx.classes), aliases=[], n_samples=None)
    card["format"]["options"] = fx.options
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(card))
    assert cli("add-dataset", "tiny-derma", "--card", tmp_path / "d.yaml", "--path",
               fx.root).exit_code == 0
    official = {"scheme": "official", "n": 2, "val_fraction": 0.5, "seed": 0}
    ok = write_suite(tmp_path, name="ok", folds=official, targets=[{"name": "tiny-derma"}])
    assert cli("run", "--suite", ok, "--dry-run").exit_code == 0  # every class everywhere
    small = write_suite(tmp_path, name="small", folds=official,
                        targets=[{"name": "tiny-derma", "max_samples": 6}])
    res = cli("run", "--suite", small, "--dry-run")
    assert res.exit_code == 1
    flat = " ".join(res.stderr.split())
    assert "Target 'tiny-derma' (its subset of max_samples=6) cannot use its official split" \
        in flat and "holds no image of class(es)" in flat


def _weights_suite(tmp_path, spec: str):
    return write_suite(tmp_path, name="w", sources=[{"name": "imagenet", "weights": spec}],
                       probes=[], generality={"ks": []})


@pytest.mark.parametrize("damage", ["truncated", "pickle", "other-arch", "not-a-state-dict",
                                    "list-header", "entry-without-offsets"])
def test_weights_that_cannot_be_loaded_fail_at_plan_time(cli, tmp_path, damage):
    from safetensors.torch import save_file

    good = tmp_path / "good.safetensors"
    save_file(build_model("resnet10t", 1000, 0.0).state_dict(), str(good))
    assert cli("run", "--suite", _weights_suite(tmp_path, f"file:{good}"), "--dry-run",
               "--json").exit_code == 0
    bad, expected = tmp_path / "bad.safetensors", "is not a valid safetensors file"
    if damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "pickle":
        bad.write_bytes(pickle.dumps({"conv1.0.weight": np.zeros(3)}))
    elif damage in ("list-header", "entry-without-offsets"):
        header = b"[1, 2]" if damage == "list-header" else \
            b'{"conv1.0.weight": {"dtype": "F32", "shape": [2]}}'
        bad.write_bytes(struct.pack("<Q", len(header)) + header)
    elif damage == "other-arch":
        save_file(build_model("resnet18", 1000, 0.0).state_dict(), str(bad))
        expected = "do not fit a timm resnet10t"
    else:
        bad = tmp_path / "bad.pth"
        torch.save([torch.zeros(2)], bad)
        expected = "is not a state dict of tensors"
    res = cli("run", "--suite", _weights_suite(tmp_path, f"file:{bad}"), "--dry-run")
    assert res.exit_code == 1 and expected in " ".join(res.stderr.split())


def test_legacy_pth_files_and_weights_without_step_counters_pass_the_plan(cli, tmp_path):
    """torchvision's classic files: the pre-zip torch.save format (no memory map) and no
    BatchNorm num_batches_tracked counters; both load at run time, so the plan takes them."""
    from safetensors.torch import save_file

    state = build_model("resnet10t", 1000, 0.0).state_dict()
    legacy = tmp_path / "legacy.pth"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    counterless = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    plain = tmp_path / "counterless.safetensors"
    save_file(counterless, str(plain))
    torch.save(counterless, tmp_path / "counterless.pth", _use_new_zipfile_serialization=False)
    for path in (legacy, plain, tmp_path / "counterless.pth"):
        res = cli("run", "--suite", _weights_suite(tmp_path, f"file:{path}"), "--dry-run")
        assert res.exit_code == 0, (path.name, res.stderr)


def test_a_pth_state_dict_is_checked_from_its_header(cli, tmp_path):
    weights = tmp_path / "resnet10t.pth"
    torch.save(build_model("resnet10t", 1000, 0.0).state_dict(), weights)
    assert cli("run", "--suite", _weights_suite(tmp_path, f"file:{weights}"),
               "--dry-run").exit_code == 0
    torch.save(build_model("resnet18", 10, 0.0).state_dict(), weights)
    res = cli("run", "--suite", _weights_suite(tmp_path, f"file:{weights}"), "--dry-run")
    assert res.exit_code == 1 and "of another shape" in res.stderr


@pytest.mark.parametrize("probe,options,expected", [
    ("task2vec", {"weights": "random", "min_subset": 1, "fraction": 0.0001},
     "holds a single class"),
    ("otdd", {"max_samples": 2, "features": "pixels"}, None),
])
def test_probe_samples_are_checked_at_plan_time(cli, tmp_path, probe, options, expected):
    suite = write_suite(tmp_path, probes=[{"method": probe, "options": options}])
    res = cli("run", "--suite", suite, "--dry-run")
    if expected is None:  # two per dataset, stratified: both classes of lfw-faces, digits'
        assert res.exit_code == 0, res.stderr  # first two: a sample of 2 still has 2 classes
        return
    assert res.exit_code == 1 and expected in res.stderr


def test_an_estimator_needs_a_model_among_the_datasets(paths, three):
    from bench_core.sources import SourceModel
    from probes.base import PROBES, ProbeContext, ProbeError

    models = {"texture-patches": SourceModel("texture-patches", "resnet10t", "x", (32, 32))}
    probe = PROBES.get("logme")({}, ProbeContext(paths, source_models=models))
    with pytest.raises(ProbeError, match="none of .* has one. Include a source of the suite: "
                                         "texture-patches"):
        probe.check(three)
    with pytest.raises(ProbeError, match="scores source models, and none were given"):
        PROBES.get("logme")({}, ProbeContext(paths)).check(three)  # weight-only sources alone
    digits = {"digits": SourceModel("digits", "resnet10t", "x", (32, 32))}
    knn = PROBES.get("knn")({"max_samples": 12}, ProbeContext(paths, source_models=digits))
    with pytest.raises(ProbeError, match="needs two classes and 2 image"):
        knn.check(three)  # digits' 10 classes in 12 images: some class once
    knn = PROBES.get("knn")({"k": 500}, ProbeContext(paths, source_models=digits))
    with pytest.raises(ProbeError, match=r"knn: k=500 neighbours need at least 501 images in "
                                         r"the sample of 'lfw-faces', which has 200\. Lower"):
        knn.check(three)  # leave-one-out on 200 faces: at most 199 neighbours
    PROBES.get("knn")({"k": 199}, ProbeContext(paths, source_models=digits)).check(three)


def test_task2vec_says_how_long_it_will_take_on_a_cpu(paths, caplog):
    import logging

    from probes.task2vec import Task2VecEmbedder, Task2VecOptions, Task2VecProbe

    device = torch.device("cpu")
    reference = Task2VecProbe({"weights": "random"}, None)  # the reference protocol
    with caplog.at_level(logging.WARNING, logger="probes.task2vec"):
        reference._warn_if_long(Task2VecEmbedder(Task2VecOptions(weights="random"), device), 3)
    text = " ".join(caplog.text.split())
    assert "task2vec: about" in text and "h on this CPU for 3 dataset(s)" in text
    assert "--option arch=resnet18" in text and "--device cuda" in text
    caplog.clear()
    small = {"weights": "random", "arch": "resnet10t", "image_size": [16, 16], "subsets": 1,
             "max_draws": 8, "min_subset": 8, "fisher_batch": 8}
    with caplog.at_level(logging.WARNING, logger="probes.task2vec"):
        Task2VecProbe(small, None)._warn_if_long(
            Task2VecEmbedder(Task2VecOptions(**small), device), 3)
    assert "task2vec: about" not in caplog.text  # a few seconds: nothing to say


@pytest.mark.parametrize("change,expected", [
    ({"architecture": {"name": "resnet5O", "drop_rate": 0.5}}, "Unknown architecture 'resnet5O'"),
    ({"generality": {"ks": [9]}}, "generality.ks [9] are outside 0..5"),
    ({"finetune_defaults": {"image_size": [0, 16]}}, "greater than 0"),
])
def test_an_architecture_and_sizes_that_jobs_would_refuse_fail_at_plan_time(cli, tmp_path,
                                                                            change, expected):
    res = cli("run", "--suite", write_suite(tmp_path, **change), "--dry-run")
    assert res.exit_code == 1 and expected in " ".join(res.stderr.split()), res.stderr


def test_the_tiny_suite_still_plans(cli, tmp_path):
    assert cli("run", "--suite", write_suite(tmp_path, **TINY), "--dry-run").exit_code == 0


def test_a_split_error_counts_the_images_of_the_subset_it_splits(cli, tmp_path):
    """max_samples=20 of lfw-faces' 200 (100 a class): the message counts the subset's 10 a
    class, not the dataset's 100, and names val_fraction among the fixes."""
    suite = write_suite(tmp_path, folds={"n": 2, "val_fraction": 0.01, "seed": 0},
                        targets=[{"name": "lfw-faces", "max_samples": 20}])
    res = cli("run", "--suite", suite, "--dry-run")
    flat = " ".join(res.stderr.split())
    assert res.exit_code == 1 and "(its subset of max_samples=20)" in flat, flat
    assert "Images per class: {" in flat and ": 10, " in flat and ": 100" not in flat
    assert ".." not in flat.split("Images per class")[0] and "folds.val_fraction" in flat
