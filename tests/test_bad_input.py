"""Every bad input fails with a clear message and a non-zero exit, and leaves no registry row,
no cache file and no temporary folder behind."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest
import yaml

import formats
from conftest import files_under
from registry.store import RegistryStore


def assert_nothing_left(home: Path) -> None:
    """No registry row, no cache file or (empty) cache folder, no lock file."""
    assert RegistryStore(home / "registry.db").names() == []
    assert files_under(home / "cache") == []
    assert not (home / "cache").exists(), sorted((home / "cache").rglob("*"))
    assert files_under(home / "locks") == []


def temporaries(folder: Path) -> list[str]:
    """Hidden files and folders below ``folder`` (atomic writes' temporary siblings), less the
    markers of unpacked archives."""
    return [p.name for p in folder.rglob(".*") if not p.name.startswith(".unpacked-")]


def test_unknown_name_suggests_close_matches(cli, bench_home):
    res = cli("add-dataset", "chest-xrays")
    assert res.exit_code == 1
    assert "Unknown dataset 'chest-xrays'. Did you mean 'chest-xray'" in res.stderr
    assert "give both --path DIR and --format LOADER" in res.stderr
    assert_nothing_left(bench_home)


def test_suggestions_come_only_for_close_names(cli, catalog):
    from registry.names import close_matches

    names = sorted([*catalog.cards, *catalog.aliases])
    assert sum(n.startswith("m") for n in names) > 3  # what a prefix rule would all suggest
    assert close_matches("m", names) == [] and close_matches("mn", names) == []
    assert close_matches("digits-nois", names)[0] == "digits-noise"
    res = cli("add-dataset", "m")
    assert res.exit_code == 1 and "Unknown dataset 'm'." in res.stderr
    assert "Did you mean" not in res.stderr


def test_unknown_loader(cli, tmp_path, bench_home):
    res = cli("add-dataset", "mine", "--path", tmp_path, "--format", "imagefolders")
    assert res.exit_code == 1 and "Unknown loader 'imagefolders'. Did you mean 'imagefolder'" in res.stderr


def test_bad_dataset_name(cli, tmp_path, bench_home):
    fx = formats.write_imagefolder(tmp_path / "d")
    res = cli("add-dataset", "My Data", "--path", fx.root, "--format", "imagefolder")
    assert res.exit_code == 1 and "Dataset name 'My Data' is not allowed" in res.stderr
    assert_nothing_left(bench_home)


def test_missing_folder(cli, tmp_path, bench_home):
    res = cli("add-dataset", "isic", "--path", tmp_path / "nope")
    assert res.exit_code == 1
    assert f"{tmp_path / 'nope'}" in res.stderr and "does not exist" in res.stderr
    assert_nothing_left(bench_home)


def test_wrong_layout(cli, tmp_path, bench_home):
    fx = formats.write_imagefolder(tmp_path / "d")
    res = cli("add-dataset", "chest", "--path", fx.root)
    assert res.exit_code == 1 and "No split folder (train, val, test) found" in res.stderr
    assert_nothing_left(bench_home)


def test_csv_row_without_image(cli, tmp_path, bench_home):
    fx = formats.write_isic2018(tmp_path / "d")
    images = sorted((fx.root / "ISIC2018_Task3_Training_Input").glob("ISIC_*.jpg"))
    for path in images[:2]:
        path.unlink()
    res = cli("add-dataset", "isic", "--path", fx.root)
    flat = " ".join(res.stderr.split())
    assert res.exit_code == 1 and "2 image(s) are missing" in flat
    for path in images[:2]:  # every missing file named at once
        assert f"image '{path.stem}'" in flat, path.stem
    assert_nothing_left(bench_home)


def test_image_that_does_not_decode_midway_leaves_no_cache(cli, tmp_path, bench_home):
    fx = formats.write_chest_xray(tmp_path / "d")
    bad = fx.root / "chest_xray" / "test" / "PNEUMONIA" / "person1_test.jpeg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    res = cli("add-dataset", "chest", "--path", fx.root)
    assert res.exit_code == 1 and "person1_test.jpeg does not decode" in res.stderr
    assert_nothing_left(bench_home)


def test_empty_class(cli, tmp_path, bench_home):
    fx = formats.write_imagefolder(tmp_path / "d")
    (fx.root / "cyst").mkdir()
    res = cli("add-dataset", "mine", "--path", fx.root, "--format", "imagefolder")
    assert res.exit_code == 1 and "class 'cyst' is empty" in res.stderr
    assert_nothing_left(bench_home)


def test_class_missing_against_card(cli, tmp_path, bench_home):
    fx = formats.write_kimia960(tmp_path / "d")
    res = cli("add-dataset", "kimia", "--path", fx.root)
    assert res.exit_code == 1 and "do not match the card: missing ['D'" in res.stderr
    assert_nothing_left(bench_home)


def test_invalid_card(cli, tmp_path, bench_home):
    card = tmp_path / "bad.yaml"
    card.write_text(yaml.safe_dump({"name": "bad", "task": "binary", "classes": ["a", "b", "c"]}))
    res = cli("add-dataset", "bad", "--card", card)
    assert res.exit_code == 1 and f"Dataset card {card} is invalid" in res.stderr
    assert "description: Field required" in res.stderr
    assert_nothing_left(bench_home)


def test_bad_size_flag(cli, bench_home):
    res = cli("add-dataset", "digits", "--size", "big")
    assert res.exit_code == 2 and "--size 'big' is not a size" in res.stderr
    assert_nothing_left(bench_home)


def test_gated_dataset_without_path_prints_the_manual_steps(cli, bench_home):
    res = cli("add-dataset", "isic")
    assert res.exit_code == 1
    assert "'isic2018' cannot be downloaded automatically" in res.stderr
    assert "ISIC2018_Task3_Training_GroundTruth.zip" in res.stderr
    assert "bench add-dataset isic2018 --path DIR" in res.stderr
    assert_nothing_left(bench_home)


# -- downloads: the real urllib path against file:// URLs -------------------------------------


def _pcam_download_card(tmp_path: Path, md5_of: dict[str, str], url_base: str) -> Path:
    files = [{"url": f"{url_base}/{name}", "filename": name, "unpack": "gunzip",
              "checksum": {"algorithm": "md5", "value": md5}} for name, md5 in md5_of.items()]
    card = {"name": "pcam-fixture", "description": "x", "origin": "medical",
            "modality": "histopathology", "task": "binary", "classes": ["no-tumor", "tumor"],
            "channels": 3, "cache_sizes": [[32, 32]], "license": "CC0", "citation": "",
            "homepage": "", "obtain": {"kind": "download", "files": files},
            "format": {"loader": "pcam", "options": {"subset": 20, "seed": 0}}}
    path = tmp_path / "pcam-fixture.yaml"
    path.write_text(yaml.safe_dump(card))
    return path


def _gzipped_pcam(tmp_path: Path) -> dict[str, str]:
    import gzip

    fx = formats.write_pcam(tmp_path / "server")
    md5 = {}
    for f in sorted(fx.root.glob("*.h5")):
        gz = f.with_name(f.name + ".gz")
        gz.write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
        md5[gz.name] = hashlib.md5(gz.read_bytes()).hexdigest()
    return md5


def test_download_verify_unpack_register(cli, tmp_path, bench_home):
    md5 = _gzipped_pcam(tmp_path)
    card = _pcam_download_card(tmp_path, md5, (tmp_path / "server").as_uri())
    res = cli("add-dataset", "pcam-fixture", "--card", card, "--json")
    assert res.exit_code == 0, res.stderr
    view = res.json()
    assert view["n_samples"] == 20 and view["class_counts"] == {"no-tumor": 15, "tumor": 5}
    dl = bench_home / "downloads" / "pcam-fixture"
    assert sorted(p.name for p in dl.glob("*.h5")) == sorted(n[:-3] for n in md5)
    assert temporaries(dl) == []


def test_checksum_mismatch_fails_and_keeps_nothing(cli, tmp_path, bench_home):
    md5 = _gzipped_pcam(tmp_path)
    first = sorted(md5)[0]
    md5[first] = "0" * 32
    card = _pcam_download_card(tmp_path, md5, (tmp_path / "server").as_uri())
    res = cli("add-dataset", "pcam-fixture", "--card", card)
    assert res.exit_code == 1
    assert f"Checksum mismatch for {first}" in res.stderr and "0" * 32 in res.stderr
    assert_nothing_left(bench_home)
    dl = bench_home / "downloads" / "pcam-fixture"
    assert not (dl / first).exists() and temporaries(dl) == []


def test_offline_download_fails_fast_with_manual_steps(cli, tmp_path, bench_home):
    md5 = {"camelyonpatch_level_2_split_train_x.h5.gz": "0" * 32}
    card = _pcam_download_card(tmp_path, md5, "http://no-such-host.invalid/pcam")
    start = time.perf_counter()
    res = cli("add-dataset", "pcam-fixture", "--card", card)
    assert time.perf_counter() - start < 30
    assert res.exit_code == 1
    assert "Could not download http://no-such-host.invalid/pcam/" in res.stderr
    assert "Get 'pcam-fixture' by hand" in res.stderr and "--path DIR" in res.stderr
    assert "(md5 " + "0" * 32 + ") and unpack it" in res.stderr
    assert_nothing_left(bench_home)
    assert not (bench_home / "downloads" / "pcam-fixture").exists()


def test_failed_path_does_not_touch_an_existing_registration(cli, tmp_path, bench_home):
    assert cli("add-dataset", "digits").exit_code == 0
    before = files_under(bench_home / "cache")
    fx = formats.write_imagefolder(tmp_path / "d")
    shutil.rmtree(fx.root / "malignant")
    (fx.root / "malignant").mkdir()
    res = cli("add-dataset", "mine", "--path", fx.root, "--format", "imagefolder")
    assert res.exit_code == 1
    assert RegistryStore(bench_home / "registry.db").names() == ["digits"]
    assert files_under(bench_home / "cache") == before


@pytest.mark.parametrize("same_name", [True, False])
def test_two_registrations_at_once(tmp_path, bench_home, same_name):
    """Two real `bench` processes at once leave a consistent registry."""
    import os
    import subprocess
    import sys

    bench = Path(sys.executable).with_name("bench")
    names = ["digits", "digits"] if same_name else ["digits", "digits-inverted"]
    env = {**os.environ, "BENCH_HOME": str(bench_home)}
    procs = [subprocess.Popen([str(bench), "add-dataset", n, "--json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in names]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    store = RegistryStore(bench_home / "registry.db")
    assert store.names() == sorted(set(names))
    for name in set(names):
        rec = store.get(name)
        assert Path(rec.cache_dir).is_dir()
        assert len(list((bench_home / "cache" / name).iterdir())) == 1
    assert temporaries(bench_home / "cache") == []


def test_every_bad_image_is_reported_in_one_error(cli, tmp_path, bench_home):
    fx = formats.write_chest_xray(tmp_path / "d")
    bad = [fx.root / "chest_xray" / "test" / "PNEUMONIA" / "person1_test.jpeg",
           fx.root / "chest_xray" / "train" / "NORMAL" / "person1_train.jpeg"]
    for path in bad:
        assert path.is_file(), path
        path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    res = cli("add-dataset", "chest", "--path", fx.root)
    assert res.exit_code == 1
    assert "2 of " in res.stderr and "images do not decode" in res.stderr
    flat = " ".join(res.stderr.split())
    for path in bad:
        assert path.name in flat, path.name
    assert_nothing_left(bench_home)


def test_bad_per_target_and_per_source_settings_name_the_suite_file(tmp_path):
    from benchmark.suite.files import resolve_suite
    from registry.errors import CardError
    from test_run import TINY

    suite = tmp_path / "mine.yaml"
    for field, setting in (("targets", {"name": "lfw-faces", "finetune": {"epochs": 0}}),
                           ("sources", {"name": "digits", "pretrain": {"batch_size": -1}})):
        suite.write_text(yaml.safe_dump({**TINY, field: [setting]}))
        with pytest.raises(CardError) as err:
            resolve_suite(str(suite))
        kind = "finetune" if field == "targets" else "pretrain"
        assert f"Suite file {suite}: field {field}.{setting['name']}.{kind} is invalid" \
            in str(err.value)


def test_a_missing_suite_file_is_named_with_the_built_in_suites(tmp_path):
    from benchmark.suite.files import resolve_suite, suite_names
    from registry.errors import BenchError

    (tmp_path / "folder.yml").mkdir()
    for missing in (tmp_path / "nowhere.yaml", tmp_path / "folder.yml"):
        with pytest.raises(BenchError) as err:
            resolve_suite(str(missing))
        assert f"Suite file {missing} does not exist" in str(err.value)
        assert all(name in str(err.value) for name in suite_names())


def test_every_file_missing_from_the_dtd_label_lists_in_one_error(cli, tmp_path, bench_home):
    fx = formats.write_dtd(tmp_path / "d")
    gone = ["banded/banded_0000.jpg", "zigzagged/zigzagged_0000.jpg"]  # in train1 and test1
    for entry in gone:
        (fx.root / "dtd" / "images" / entry).unlink()
    res = cli("add-dataset", "my-textures", "--path", fx.root, "--format", "dtd")
    flat = " ".join(res.stderr.split())
    assert res.exit_code == 1 and "2 file(s) that the label lists" in flat
    assert "train1.txt lists banded/banded_0000.jpg" in flat
    assert "test1.txt lists zigzagged/zigzagged_0000.jpg" in flat
    assert_nothing_left(bench_home)


def test_every_missing_chest_xray_class_folder_in_one_error(cli, tmp_path, bench_home):
    fx = formats.write_chest_xray(tmp_path / "d")
    top = fx.root / "chest_xray"
    shutil.rmtree(top / "train" / "NORMAL")
    for image in (top / "test" / "PNEUMONIA").glob("*.jpeg"):
        image.unlink()
    res = cli("add-dataset", "chest", "--path", fx.root)
    flat = " ".join(res.stderr.split())
    assert res.exit_code == 1 and "2 class folder(s) are missing or empty" in flat
    assert f"{top / 'train' / 'NORMAL'} is missing" in flat
    assert f"{top / 'test' / 'PNEUMONIA'} holds no images" in flat
    assert_nothing_left(bench_home)
