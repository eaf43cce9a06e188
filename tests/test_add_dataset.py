"""`bench add-dataset` / `bench datasets` end to end, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import formats
from conftest import files_under
from registry.catalog import Catalog

EMBEDDED = [n for n, c in Catalog.load().cards.items() if c.obtain.kind == "embedded"]


def fixture_card(tmp_path: Path, loader: str, fx: formats.Fixture, channels: int = 3) -> Path:
    data = {
        "name": f"fx-{loader}", "description": f"{loader} fixture", "origin": "medical",
        "modality": "test", "task": "binary" if len(fx.classes) == 2 else "multiclass",
        "classes": list(fx.classes), "n_samples": sum(fx.counts.values()), "channels": channels,
        "cache_sizes": [[16, 16], [8, 12]], "license": "test", "citation": "", "homepage": "",
        "obtain": {"kind": "manual", "steps": ["made by the test"]},
        "format": {"loader": loader, "options": fx.options},
    }
    path = tmp_path / f"fx-{loader}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", EMBEDDED)
def test_every_embedded_dataset_registers_with_its_card_counts(cli, catalog, bench_home, name):
    res = cli("add-dataset", name, "--json")
    assert res.exit_code == 0, res.stderr
    view = res.json()
    card = catalog.get(name)
    assert view["registered"] is True and view["n_samples"] == card.n_samples
    assert sum(view["class_counts"].values()) == card.n_samples
    assert all(n > 0 for n in view["class_counts"].values())
    images = [f for f in view["cache_files"] if f["role"].startswith("images")]
    assert images[0]["shape"] == [card.n_samples, card.channels, *card.cache_sizes[0]]


@pytest.mark.parametrize("loader", sorted(formats.FIXTURES))
def test_every_format_fixture_registers_from_a_card(cli, tmp_path, loader):
    fx = formats.FIXTURES[loader](tmp_path / "data")
    card = fixture_card(tmp_path, loader, fx)
    args = ["add-dataset", f"fx-{loader}", "--card", card, "--json"]
    res = cli(*args, *(["--path", fx.root] if fx.root else []))
    assert res.exit_code == 0, res.stderr
    view = res.json()
    assert view["class_counts"] == fx.counts
    n = sum(fx.counts.values())
    shapes = {f["role"]: f["shape"] for f in view["cache_files"]}
    split = {"split": [n]} if loader == "medmnist" else {}  # the official split is kept
    assert shapes == {"images 16x16": [n, 3, 16, 16], "images 8x12": [n, 3, 8, 12], "labels": [n],
                      **split}
    labels = np.load(next(f["path"] for f in view["cache_files"] if f["role"] == "labels"))
    assert np.bincount(labels, minlength=len(fx.classes)).tolist() == list(fx.counts.values())


def test_medmnist_official_split_survives_registration(cli, tmp_path):
    fx = formats.write_medmnist(tmp_path / "data")
    card = fixture_card(tmp_path, "medmnist", fx)
    res = cli("add-dataset", "fx-medmnist", "--card", card, "--path", fx.root, "--json")
    assert res.exit_code == 0, res.stderr
    files = {f["role"]: f["path"] for f in res.json()["cache_files"]}
    npz = np.load(fx.root / "dermamnist.npz")
    expected = np.concatenate([np.full(len(npz[f"{s}_labels"]), code)
                               for s, code in (("train", 0), ("val", 1), ("test", 2))])
    np.testing.assert_array_equal(np.load(files["split"]), expected)
    np.testing.assert_array_equal(  # labels and images stay in the same (split) order
        np.load(files["labels"]),
        np.concatenate([npz[f"{s}_labels"].ravel() for s in ("train", "val", "test")]))


@pytest.mark.parametrize("name,writer", [("isic2018", formats.write_isic2018),
                                         ("chest", formats.write_chest_xray)])
def test_catalog_dataset_from_the_users_folder(cli, tmp_path, name, writer):
    fx = writer(tmp_path / "data")
    res = cli("add-dataset", name, "--path", fx.root, "--json")
    assert res.exit_code == 0, res.stderr
    view = res.json()
    assert view["name"] == fx.catalog_name
    assert view["class_counts"] == fx.counts
    assert "expects" in res.stderr  # count differs from the full dataset: warned, not failed


def test_show_json_contract(cli):
    assert cli("add-dataset", "lfw-faces").exit_code == 0
    view = cli("datasets", "show", "lfw-faces", "--json").json()
    for key in ("name", "registered", "n_samples", "classes", "class_counts", "meta_features", "card"):
        assert key in view
    assert view["meta_features"]["NumberOfInstances"] == 200.0
    assert view["card"]["expert"]["subject"] == "faces"
    listing = cli("datasets", "--json").json()
    row = next(r for r in listing if r["name"] == "lfw-faces")
    assert row["registered"] is True
    assert not next(r for r in listing if r["name"] == "digits")["registered"]


def test_show_unregistered_catalog_dataset_and_alias(cli):
    view = cli("datasets", "show", "pcam", "--json").json()
    assert view["name"] == "pcam-middle" and view["registered"] is False
    assert view["n_samples"] == 100000 and view["class_counts"] is None


def test_user_folder_with_format(cli, tmp_path):
    fx = formats.write_imagefolder(tmp_path / "mine")
    res = cli("add-dataset", "my-lesions", "--path", fx.root, "--format", "imagefolder",
              "--size", "24", "--json")
    assert res.exit_code == 0, res.stderr
    view = res.json()
    assert view["classes"] == ["benign", "malignant"] and view["class_counts"] == fx.counts
    assert view["card"]["cache_sizes"] == [[24, 24]] and view["card"]["channels"] == 3
    listing = cli("datasets", "--json").json()
    assert any(r["name"] == "my-lesions" and not r["in_catalog"] for r in listing)


def test_second_add_is_a_no_op_and_force_redoes(cli, bench_home):
    first = cli("add-dataset", "digits", "--json").json()
    again = cli("add-dataset", "digits", "--json").json()
    assert again["already_registered"] is True and again["fingerprint"] == first["fingerprint"]
    forced = cli("add-dataset", "digits", "--force", "--size", "16", "--json").json()
    assert forced["already_registered"] is False
    assert [f["shape"] for f in forced["cache_files"] if f["role"].startswith("images")] == \
        [[1797, 1, 16, 16]]
    caches = [p for p in (bench_home / "cache" / "digits").iterdir()]
    assert len(caches) == 1  # the old cache was removed


def test_remove(cli, bench_home):
    cli("add-dataset", "lfw-faces")
    assert cli("datasets", "remove", "lfw-faces").exit_code == 0
    assert files_under(bench_home / "cache") == []
    res = cli("datasets", "remove", "lfw-faces")
    assert res.exit_code == 1 and "not registered" in res.stderr


def test_meta_features_against_independent_computation(cli):
    from scipy.stats import entropy

    view = cli("add-dataset", "texture-patches", "--json").json()
    path = next(f["path"] for f in view["cache_files"] if f["role"] == "images 32x32")
    images = np.load(path).astype(np.float64) / 255.0
    counts = np.array(list(view["class_counts"].values()))
    meta = view["meta_features"]
    assert meta["ClassEntropy"] == pytest.approx(entropy(counts, base=2))
    assert meta["intensity_mean"] == pytest.approx(images.mean())
    assert meta["intensity_std"] == pytest.approx(images.std(), rel=1e-6)
    assert meta["image_contrast_mean"] == pytest.approx(images.reshape(len(images), -1).std(1).mean())
    assert meta["MajorityClassPercentage"] == pytest.approx(100 * counts.max() / counts.sum())
    assert meta["MajorityClassSize"] == counts.max() and meta["MinorityClassSize"] == counts.min()


def test_users_folder_is_scanned_once(cli, tmp_path, monkeypatch):
    from registry.loaders.imagefolder import ImageFolderLoader

    calls = []
    real_scan = ImageFolderLoader.scan

    def counting_scan(self, root):
        calls.append(root)
        return real_scan(self, root)

    monkeypatch.setattr(ImageFolderLoader, "scan", counting_scan)
    fx = formats.write_imagefolder(tmp_path / "mine")
    res = cli("add-dataset", "my-once", "--path", fx.root, "--format", "imagefolder")
    assert res.exit_code == 0, res.stderr
    assert len(calls) == 1


def test_registering_a_name_from_another_folder_refuses_unless_forced(cli, tmp_path, bench_home):
    import formats

    first = formats.write_chest_xray(tmp_path / "first")
    assert cli("add-dataset", "chest", "--path", first.root).exit_code == 0
    again = cli("add-dataset", "chest", "--path", first.root, "--json")
    assert again.exit_code == 0 and again.json()["already_registered"] is True
    broken = tmp_path / "broken"
    broken.mkdir()
    res = cli("add-dataset", "chest", "--path", broken)
    assert res.exit_code == 1
    assert f"registered from {first.root.absolute()}, not from {broken.absolute()}" in res.stderr
    assert "--force" in res.stderr
    view = cli("datasets", "show", "chest", "--json").json()
    assert view["root"] == str(first.root.absolute())
    second = formats.write_chest_xray(tmp_path / "second")
    forced = cli("add-dataset", "chest", "--path", second.root, "--force", "--json")
    assert forced.exit_code == 0 and forced.json()["already_registered"] is False
    assert cli("datasets", "show", "chest", "--json").json()["root"] == str(second.root.absolute())


def test_a_symlink_to_the_registered_folder_is_the_same_folder(cli, tmp_path, bench_home):
    import formats

    first = formats.write_chest_xray(tmp_path / "first")
    assert cli("add-dataset", "chest", "--path", first.root).exit_code == 0
    link = tmp_path / "link"
    link.symlink_to(first.root, target_is_directory=True)
    again = cli("add-dataset", "chest", "--path", link, "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["already_registered"] is True


def test_a_users_name_from_a_broken_other_folder_is_refused_before_the_scan(cli, tmp_path):
    import formats

    fx = formats.write_imagefolder(tmp_path / "mine")
    assert cli("add-dataset", "my-lesions", "--path", fx.root, "--format", "imagefolder"
               ).exit_code == 0
    broken = tmp_path / "broken"  # no class folders: a scan would fail with its own error
    broken.mkdir()
    res = cli("add-dataset", "my-lesions", "--path", broken, "--format", "imagefolder")
    flat = " ".join(res.stderr.split())
    assert res.exit_code == 1
    assert f"registered from {fx.root.absolute()}, not from {broken.absolute()}" in flat
    assert "--force" in flat


def test_another_card_for_a_registered_name_is_refused_unless_forced(cli, tmp_path):
    fx = formats.write_imagefolder(tmp_path / "data")
    card = fixture_card(tmp_path, "imagefolder", fx)
    assert cli("add-dataset", "fx-imagefolder", "--card", card, "--path", fx.root).exit_code == 0
    same = cli("add-dataset", "fx-imagefolder", "--card", card, "--path", fx.root, "--json")
    assert same.exit_code == 0 and same.json()["already_registered"] is True
    changed = tmp_path / "changed.yaml"
    changed.write_text(card.read_text().replace("imagefolder fixture", "relabelled"))
    res = cli("add-dataset", "fx-imagefolder", "--card", changed, "--path", fx.root)
    flat = " ".join(res.stderr.split())
    assert res.exit_code == 1
    assert f"registered (from {fx.root.absolute()}) with a card that differs from {changed} " \
        "in description; nothing was changed" in flat
    assert "--force" in flat
    shown = cli("datasets", "show", "fx-imagefolder", "--json").json()
    assert shown["card"]["description"] == "imagefolder fixture"
    forced = cli("add-dataset", "fx-imagefolder", "--card", changed, "--path", fx.root,
                 "--force", "--json")
    assert forced.exit_code == 0 and forced.json()["card"]["description"] == "relabelled"


@pytest.mark.parametrize("registered", [False, True])
def test_a_built_in_dataset_with_a_path_is_refused(cli, tmp_path, bench_home, registered):
    from registry.store import RegistryStore

    if registered:
        assert cli("add-dataset", "digits").exit_code == 0
    res = cli("add-dataset", "digits", "--path", tmp_path)
    flat = " ".join(res.stderr.split())
    assert res.exit_code == 1
    assert f"'digits' is built into the package and reads no folder: --path {tmp_path}" in flat
    assert "bench add-dataset my-digits --path" in flat
    names = RegistryStore(bench_home / "registry.db").names() if registered else []
    assert names == (["digits"] if registered else [])
    assert registered or not (bench_home / "cache").exists()
