"""Quirks of the real formats and their bad inputs: each error names the file or value."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

import formats
from registry.errors import CardError, DatasetFormatError
from registry.loaders import LOADERS, LoaderContext
from registry.paths import BenchPaths
from registry.sampling import stratified_order, stratified_subset


def load(name, fixture, tmp_path, **options):
    ctx = LoaderContext(BenchPaths(tmp_path / "home"), "t", fixture.classes)
    loader = LOADERS.get(name)({**fixture.options, **options}, ctx)
    return loader, loader.scan(fixture.root)


def test_stl10_images_come_out_upright(tmp_path):
    fx = formats.write_stl10(tmp_path / "d")
    loader, table = load("stl10", fx, tmp_path)
    np.testing.assert_array_equal(loader.read(table, 0), fx.extra["first_image"])
    assert table.labels.tolist() == [0, 1, 2, 0, 1, 2]


def test_stl10_truncated_file(tmp_path):
    fx = formats.write_stl10(tmp_path / "d")
    x = fx.root / "stl10_binary" / "train_X.bin"
    x.write_bytes(x.read_bytes()[:-10])
    with pytest.raises(DatasetFormatError, match="train_X.bin.*not a multiple.*truncated"):
        load("stl10", fx, tmp_path)


def test_chest_ignores_debris_and_nested_duplicate_and_mixes_modes(tmp_path):
    fx = formats.write_chest_xray(tmp_path / "d")
    loader, table = load("chest-xray", fx, tmp_path)
    assert Path(table.where) == fx.root / "chest_xray"
    assert not any("__MACOSX" in str(p) or p.name == "copy.jpeg" for p in table.refs)
    modes = {loader.read(table, i).ndim for i in range(len(table))}
    assert modes == {2, 3}


def test_chest_missing_class_folder(tmp_path):
    fx = formats.write_chest_xray(tmp_path / "d")
    import shutil

    shutil.rmtree(fx.root / "chest_xray" / "val" / "PNEUMONIA")
    with pytest.raises(DatasetFormatError, match=r"val/PNEUMONIA is missing"):
        load("chest-xray", fx, tmp_path)


def test_isic_row_without_image_names_the_row(tmp_path):
    fx = formats.write_isic2018(tmp_path / "d")
    (fx.root / "ISIC2018_Task3_Training_Input" / "ISIC_0024308.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"line 4 \(image 'ISIC_0024308'\).*does not exist"):
        load("isic2018", fx, tmp_path)


def test_isic_row_not_one_hot(tmp_path):
    fx = formats.write_isic2018(tmp_path / "d")
    path = fx.root / "ISIC2018_Task3_Training_GroundTruth" / "ISIC2018_Task3_Training_GroundTruth.csv"
    rows = list(csv.reader(path.open()))
    rows[2][1:] = ["1.0", "1.0", "0.0", "0.0", "0.0", "0.0", "0.0"]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(DatasetFormatError, match="line 3.*not one-hot"):
        load("isic2018", fx, tmp_path)


def test_isic_wrong_header(tmp_path):
    fx = formats.write_isic2018(tmp_path / "d")
    path = fx.root / "ISIC2018_Task3_Training_GroundTruth" / "ISIC2018_Task3_Training_GroundTruth.csv"
    path.write_text("name,a,b\nx,1,0\n")
    with pytest.raises(DatasetFormatError, match="header is"):
        load("isic2018", fx, tmp_path)


def test_kimia_bad_file_name(tmp_path):
    fx = formats.write_kimia960(tmp_path / "d")
    Image.new("RGB", (8, 8)).save(fx.root / "scan_final.tif")
    with pytest.raises(DatasetFormatError, match="scan_final.tif"):
        load("kimia960", fx, tmp_path)


def test_dtd_label_list_names_missing_file(tmp_path):
    fx = formats.write_dtd(tmp_path / "d")
    (fx.root / "dtd" / "images" / "banded" / "banded_0000.jpg").unlink()
    with pytest.raises(DatasetFormatError, match="train1.txt lists banded/banded_0000.jpg"):
        load("dtd", fx, tmp_path)


def test_dtd_split_selects_the_listed_images(tmp_path):
    fx = formats.write_dtd(tmp_path / "d")
    _, table = load("dtd", fx, tmp_path, split="test1")
    listed = (fx.root / "dtd" / "labels" / "test1.txt").read_text().split()
    assert sorted(f"{p.parent.name}/{p.name}" for p in table.refs) == sorted(listed)


def test_empty_class_folder(tmp_path):
    fx = formats.write_imagefolder(tmp_path / "d")
    (fx.root / "cyst").mkdir()
    with pytest.raises(DatasetFormatError, match="cyst.*holds no image files.*empty"):
        load("imagefolder", formats.Fixture(fx.root, {}, None, {}), tmp_path)


def test_undecodable_image_names_the_file(tmp_path):
    fx = formats.write_imagefolder(tmp_path / "d")
    bad = fx.root / "benign" / "img_9.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    loader, table = load("imagefolder", fx, tmp_path)
    i = [str(r) for r in table.refs].index(str(bad))
    with pytest.raises(DatasetFormatError, match="img_9.png does not decode"):
        loader.read(table, i)


def test_sixteen_bit_grayscale_is_rescaled(tmp_path):
    fx = formats.write_imagefolder(tmp_path / "d")
    arr = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    Image.fromarray(arr).save(fx.root / "benign" / "img_16bit.png")
    loader, table = load("imagefolder", fx, tmp_path)
    i = [p.name for p in table.refs].index("img_16bit.png")
    np.testing.assert_array_equal(loader.read(table, i), [[0, 64], [128, 255]])


def test_pcam_nested_stratified_subsets(tmp_path):
    fx = formats.write_pcam(tmp_path / "d")
    _, middle = load("pcam", fx, tmp_path, subset=20, seed=0)
    _, small = load("pcam", fx, tmp_path, subset=8, seed=0)
    assert set(small.refs.tolist()) <= set(middle.refs.tolist())
    assert middle.class_counts() == {"no-tumor": 15, "tumor": 5}
    assert small.class_counts() == {"no-tumor": 6, "tumor": 2}
    _, other = load("pcam", fx, tmp_path, subset=20, seed=1)
    assert set(other.refs.tolist()) != set(middle.refs.tolist())


def test_pcam_subset_images_match_their_rows(tmp_path):
    fx = formats.write_pcam(tmp_path / "d")
    loader, table = load("pcam", fx, tmp_path, subset=10, seed=3)
    with h5py.File(fx.root / "camelyonpatch_level_2_split_valid_x.h5") as fh:
        valid = fh["x"][:]
    got = list(loader.iter_images(table))
    for k, ref in enumerate(table.refs):
        if 40 <= ref < 52:
            np.testing.assert_array_equal(got[k], valid[ref - 40])


def test_pcam_gz_only_says_gunzip(tmp_path):
    fx = formats.write_pcam(tmp_path / "d")
    f = fx.root / "camelyonpatch_level_2_split_test_y.h5"
    f.rename(f.with_name(f.name + ".gz"))
    with pytest.raises(DatasetFormatError, match="gunzip it first"):
        load("pcam", fx, tmp_path)


def test_subset_larger_than_data(tmp_path):
    fx = formats.write_pcam(tmp_path / "d")
    with pytest.raises(CardError, match="Subset size 1000 is larger than the 60 samples"):
        load("pcam", fx, tmp_path, subset=1000)


def test_stratified_order_prefixes_are_stratified():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    order = stratified_order(labels, seed=7)
    assert sorted(order.tolist()) == list(range(100))
    for n in range(1, 101):
        counts = np.bincount(labels[order[:n]], minlength=3)
        assert np.all(np.abs(counts - n * np.array([0.5, 0.3, 0.2])) <= 1.0)
    assert set(stratified_subset(labels, 10, 7)) <= set(stratified_subset(labels, 40, 7))


def test_idx_truncated(tmp_path):
    fx = formats.write_idx(tmp_path / "d")
    import gzip

    path = fx.root / "t10k-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-5]))
    with pytest.raises(DatasetFormatError, match="t10k-images-idx3-ubyte.gz.*truncated"):
        load("idx", fx, tmp_path)


def test_idx_transpose(tmp_path):
    fx = formats.write_idx(tmp_path / "d")
    plain, table = load("idx", fx, tmp_path)
    flipped, t2 = load("idx", fx, tmp_path, transpose=True)
    np.testing.assert_array_equal(t2.labels, table.labels)
    np.testing.assert_array_equal(flipped.read(t2, 1), plain.read(table, 1).T)


def test_idx_label_offset_out_of_range(tmp_path):
    fx = formats.write_idx(tmp_path / "d")
    with pytest.raises(DatasetFormatError, match=r"run -1\.\.1, outside.*Check label_offset"):
        load("idx", fx, tmp_path, label_offset=1)


def test_amat_wrong_width(tmp_path):
    fx = formats.write_amat(tmp_path / "d")
    (fx.root / "mnist_background_images_test.amat").write_text("0.1 0.2 3\n")
    with pytest.raises(DatasetFormatError, match="has 3 columns per row, expected 785"):
        load("amat", fx, tmp_path)


def test_medmnist_missing_arrays(tmp_path):
    fx = formats.write_medmnist(tmp_path / "d")
    np.savez(fx.root / "dermamnist.npz", train_images=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(DatasetFormatError, match="lacks the MedMNIST arrays"):
        load("medmnist", fx, tmp_path)


def test_openml_offline_matches_pixels_and_qualities(tmp_path):
    fx = formats.write_openml(tmp_path / "openml")
    loader, table = load("openml", fx, tmp_path)
    images = np.stack(list(loader.iter_images(table))) / 255.0
    np.testing.assert_allclose(images, fx.extra["images"], atol=0.5 / 255 + 1e-9)
    np.testing.assert_array_equal(table.labels, fx.extra["labels"])
    quals = loader.extra_meta_features()
    assert quals["NumberOfInstances"] == 30.0
    assert quals["NumberOfClasses"] == 10.0


def test_openml_wrong_shape(tmp_path):
    fx = formats.write_openml(tmp_path / "openml")
    with pytest.raises(DatasetFormatError, match="64 feature columns.*shape \\[28, 28\\] needs 784"):
        load("openml", fx, tmp_path, shape=[28, 28])


def test_openml_unreachable_gives_guidance(tmp_path):
    fx = formats.Fixture(tmp_path / "empty-cache", {"dataset_id": 999999, "shape": [8, 8]},
                         None, {})
    from registry.errors import DownloadError

    with pytest.raises(DownloadError, match="Could not fetch OpenML dataset 999999.*prepared"):
        load("openml", fx, tmp_path)
