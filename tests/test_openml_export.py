"""OpenML: one vocabulary of qualities, and a registered dataset exported with openml-python
(offline: the object and its ARFF validate, the folder holds what OpenML's upload takes)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import formats


def test_export_round_trips_pixels_labels_and_card(cli, bench_home, catalog):
    import arff  # liac-arff, what openml-python reads and writes ARFF with

    assert cli("add-dataset", "digits").exit_code == 0
    res = cli("openml", "export", "digits", "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert doc["files"] == ["dataset.arff", "description.xml", "qualities.json"]
    folder = bench_home / "openml-export" / "digits"
    decoded = arff.loads((folder / "dataset.arff").read_text())
    view = cli("datasets", "show", "digits", "--json").json()
    path = next(f["path"] for f in view["cache_files"] if f["role"].startswith("images"))
    images = np.load(path)
    data = np.array([row[:-1] for row in decoded["data"]], dtype=np.int64)
    np.testing.assert_array_equal(data, images.reshape(len(images), -1))
    labels = np.load(next(f["path"] for f in view["cache_files"] if f["role"] == "labels"))
    assert [row[-1] for row in decoded["data"]] == [view["classes"][i] for i in labels]
    assert decoded["attributes"][-1] == ("class", view["classes"])

    ns = {"oml": "http://openml.org/openml"}
    xml = ET.fromstring((folder / "description.xml").read_text())
    card = catalog.get("digits")
    assert xml.find("oml:name", ns).text == "digits"
    assert xml.find("oml:default_target_attribute", ns).text == "class"
    assert xml.find("oml:licence", ns).text == card.license
    assert xml.find("oml:citation", ns).text.strip() == card.citation.strip()
    assert xml.find("oml:original_data_url", ns).text == card.homepage
    assert "NumberOfInstances" in xml.find("oml:description", ns).text
    qualities = json.loads((folder / "qualities.json").read_text())
    assert qualities["NumberOfInstances"] == 1797.0 and qualities["NumberOfClasses"] == 10.0


def test_publish_offline_fails_and_keeps_the_folder(cli, bench_home, monkeypatch):
    assert cli("add-dataset", "digits").exit_code == 0
    monkeypatch.delenv("OPENML_APIKEY", raising=False)
    res = cli("openml", "export", "digits", "--publish")
    assert res.exit_code == 1 and "needs an OpenML API key in OPENML_APIKEY" in res.stderr
    monkeypatch.setenv("OPENML_APIKEY", "0123456789abcdef")
    res = cli("openml", "export", "digits", "--publish")
    assert res.exit_code == 1 and "cannot reach OpenML" in res.stderr
    assert "The export is written to" in res.stderr
    assert (bench_home / "openml-export" / "digits" / "dataset.arff").is_file()


def test_export_refuses_what_it_cannot_export(cli, bench_home):
    res = cli("openml", "export", "digits")
    assert res.exit_code == 1 and "'digits' is not registered" in res.stderr
    assert cli("add-dataset", "digits").exit_code == 0
    res = cli("openml", "export", "digits", "--size", "17x17")
    assert res.exit_code == 1 and "not 17x17" in res.stderr
    assert not (bench_home / "openml-export" / "digits").exists()


def test_openml_qualities_sit_beside_ours_under_openml_names(cli, tmp_path):
    """An OpenML dataset's own qualities (NumberOfFeatures) and ours share one vocabulary."""
    fx = formats.write_openml(tmp_path / "openml")
    res = cli("add-dataset", "my-optdigits", "--path", fx.root, "--format", "openml",
              "--option", "dataset_id=28", "--option", "shape=[8, 8]",
              "--option", "max_value=16", "--json")
    assert res.exit_code == 0, res.stderr
    meta = res.json()["meta_features"]
    assert meta["NumberOfFeatures"] == 65.0  # OpenML's, no prefix
    assert meta["NumberOfInstances"] == 30.0 and meta["MajorityClassSize"] == 3.0  # both agree
    assert meta["MajorityClassPercentage"] == pytest.approx(10.0)
    assert not [k for k in meta if k.startswith("openml.")]


def test_registries_written_before_the_vocabulary_still_compare():
    from registry.metafeatures import in_vocabulary

    old = {"n_instances": 100.0, "majority_class_share": 0.25, "intensity_mean": 0.5}
    assert in_vocabulary(old) == {"NumberOfInstances": 100.0, "MajorityClassPercentage": 25.0,
                                  "intensity_mean": 0.5}
