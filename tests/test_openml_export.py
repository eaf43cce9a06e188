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
    # the authors of each entry of the card's citation (scikit-learn's and scikit-image's)
    assert xml.find("oml:creator", ns).text == "Pedregosa et al.; van der Walt et al."
    qualities = json.loads((folder / "qualities.json").read_text())
    assert qualities == view["meta_features"]  # the registry's, in OpenML's vocabulary
    assert qualities["NumberOfInstances"] == 1797.0 and qualities["NumberOfClasses"] == 10.0
    assert qualities["NumberOfInstances"] == len(labels)
    listed = json.loads(xml.find("oml:description", ns).text.split("Meta-features (OpenML "
                                                                    "quality names where OpenML "
                                                                    "defines them): ")[1])
    assert set(listed) == set(qualities) and len(listed) > 10
    for key, value in qualities.items():
        assert listed[key] == pytest.approx(value, abs=1e-6), key


def test_the_built_openml_dataset_holds_what_an_upload_sends(paths, cli, catalog):
    """openml-python's own serialisation of the object (what ``publish`` posts, before the
    network): the description's required fields and the ARFF it validates."""
    import arff
    import xmltodict

    from registry.openml_export import export_dataset

    assert cli("add-dataset", "digits").exit_code == 0
    dataset = export_dataset("digits", paths).dataset
    files = dataset._get_file_elements()  # what OpenMLBase.publish posts besides the XML
    decoded = arff.ArffDecoder().decode(files["dataset"], encode_nominal=True)
    names = [a[0] for a in decoded["attributes"]]
    assert names[-1] == "class" and len(names) == 32 * 32 + 1  # the 32x32 cache, one channel
    assert len(decoded["data"]) == 1797
    desc = dataset._to_dict()["oml:data_set_description"]
    assert xmltodict.parse(dataset._to_xml())["oml:data_set_description"] == \
        {k: (str(v) if not isinstance(v, str) else v) for k, v in desc.items()}
    card = catalog.get("digits")
    for field, expected in (("name", "digits"), ("format", "arff"), ("licence", card.license),
                            ("citation", card.citation), ("original_data_url", card.homepage),
                            ("default_target_attribute", "class")):
        assert desc[f"oml:{field}"] == expected, field
    assert desc["oml:creator"] and desc["oml:description"].startswith(card.description)
    assert desc["oml:default_target_attribute"] in names and "oml:id" not in desc
    assert (paths.home / "openml-export" / "digits" / "description.xml").read_text() == \
        dataset._to_xml()


def test_publish_offline_fails_and_keeps_the_folder(cli, bench_home, monkeypatch):
    import socket
    import time

    import openml

    assert cli("add-dataset", "digits").exit_code == 0
    monkeypatch.delenv("OPENML_APIKEY", raising=False)
    res = cli("openml", "export", "digits", "--publish")
    assert res.exit_code == 1 and "needs an OpenML API key in OPENML_APIKEY" in res.stderr
    monkeypatch.setenv("OPENML_APIKEY", "0123456789abcdef")
    with socket.socket() as closed:  # bound, not listening: refused, online or not
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        monkeypatch.setattr(openml.config, "server", f"http://127.0.0.1:{port}/api/v1/xml")
        start = time.perf_counter()
        res = cli("openml", "export", "digits", "--publish")
        assert time.perf_counter() - start < 30
    assert res.exit_code == 1 and f"cannot reach OpenML at 127.0.0.1:{port}" in res.stderr
    folder = bench_home / "openml-export" / "digits"
    assert f"The export is written to {folder}" in res.stderr.replace("\n", "")
    assert "0123456789abcdef" not in res.stderr + res.stdout
    assert (folder / "dataset.arff").is_file() and (folder / "description.xml").is_file()


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


def test_a_refused_upload_fails_clearly_and_keeps_the_folder(cli, bench_home, monkeypatch):
    """The server is reached but refuses the upload (HTTP 401): a clear error, key unprinted."""
    import openml

    from test_publish import _Refusing

    assert cli("add-dataset", "digits").exit_code == 0
    monkeypatch.setenv("OPENML_APIKEY", "0123456789abcdef")
    monkeypatch.setattr(openml.config, "connection_n_retries", 1)
    with _Refusing() as server:
        monkeypatch.setattr(openml.config, "server", f"{server}/api/v1/xml")
        res = cli("openml", "export", "digits", "--publish")
    assert res.exit_code == 1, res.stdout
    assert f"--publish to OpenML at {server}/api/v1/xml failed" in res.stderr
    assert "0123456789abcdef" not in res.stderr + res.stdout
    assert openml.config.apikey != "0123456789abcdef"  # the key set for the upload only
    assert (bench_home / "openml-export" / "digits" / "dataset.arff").is_file()
